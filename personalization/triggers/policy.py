"""When a person may be emailed: quiet hours in their own time zone.

The time zone comes from the profile's country: the first zone IANA's zone.tab lists for it
(its most populous; a country spanning zones gets its main one), UTC when unknown.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from zoneinfo import ZoneInfo

UTC_ZONE = ZoneInfo("UTC")


@lru_cache(maxsize=1)
def _country_zones() -> dict[str, str]:
    text = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text()
    zones: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            parts = line.split("\t")
            zones.setdefault(parts[0].upper(), parts[2])
    return zones


def zone_for(country: str | None) -> ZoneInfo:
    """The time zone of an ISO-3166 alpha-2 country code (UTC when unknown)."""
    name = _country_zones().get((country or "").strip().upper())
    return ZoneInfo(name) if name else UTC_ZONE


def next_allowed(now: datetime, country: str | None, quiet: tuple[int, int]) -> datetime:
    """`now` (naive UTC) if outside quiet hours in the person's zone, else when they end.

    Args:
        now: the evaluation time, naive UTC.
        country: the person's country code.
        quiet: local hours [start, end), e.g. (21, 8) = no sends from 21:00 to 08:00.
    """
    start, end = quiet
    if start == end:
        return now
    local = now.replace(tzinfo=UTC_ZONE).astimezone(zone_for(country))
    hour = local.hour
    in_quiet = (start <= hour < end) if start < end else (hour >= start or hour < end)
    if not in_quiet:
        return now
    until = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if until <= local:
        until += timedelta(days=1)
    return until.astimezone(UTC_ZONE).replace(tzinfo=None)

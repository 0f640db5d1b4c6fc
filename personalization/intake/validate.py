"""The landing contract's checks for one pixel event, in Python, for the intake's hot path.

The nightly extract enforces the same column specs (`extract.contracts.EVENTS`) in SQL over
whole files; a DuckDB round trip costs ~100 ms, far too much per request, so the intake
applies the same specs here. Both enforcers read the specs from one place, and
tests/test_intake.py runs both on the same tricky events and requires identical verdicts.
The nightly extract checks the intake's day files again, so a divergence could only move an
event to quarantine at night, never let a bad one through.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime
from typing import Any

from personalization.extract.contracts import EVENTS, Column
from personalization.extract.jsonl_file import DROPPED_KEYS
from personalization.extract.rules import SHA256_RE, future_cutoff

_SHA256 = re.compile(SHA256_RE)
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_IPV6 = re.compile(r"\b(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}\b")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]|$)")


def _blank(value: Any) -> str | None:
    """The field as text, or None when absent, empty or only whitespace (as in extract)."""
    if value is None:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and math.isfinite(value) and value == int(value):
        text = str(value)
    elif isinstance(value, str | int | float):
        text = str(value)
    else:  # an object or array: its JSON text, as DuckDB's json_extract_string gives it
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text if text.strip() else None


def parse_timestamp(text: str) -> datetime | None:
    """UTC timestamp of an ISO-8601 value (offset honoured, none means UTC), else None."""
    t = text.strip()
    if not _ISO_DATE.match(t):  # extended ISO only, as DuckDB's cast
        return None
    try:
        value = datetime.fromisoformat(t)
    except ValueError:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _column_reasons(col: Column, raw: Any, cutoff: datetime) -> tuple[Any, list[str]]:
    v = _blank(raw)
    reasons: list[str] = []
    if v is None:
        if col.required:
            reasons.append(f"missing_{col.required}:{col.name}")
        return None, reasons
    match col.kind:
        case "sha256":
            if not _SHA256.fullmatch(v.strip()):
                reasons.append(f"bad_type:{col.name}")
            return v, reasons
        case "enum":
            value = v.strip().lower()
            if value not in col.values:
                reasons.append(f"unknown_value:{col.name}")
            return value, reasons
        case "timestamp":
            ts = parse_timestamp(v)
            if ts is None:
                reasons.append(f"bad_type:{col.name}")
            elif ts >= cutoff:
                reasons.append(f"future_timestamp:{col.name}")
            return ts, reasons
        case _:
            return v, reasons


def check_event(event: Any, ds: date, clock_skew_minutes: int) -> tuple[dict | None, str | None]:
    """Check one posted event against the pixel contract.

    Args:
        event: the decoded JSON value.
        ds: the receiving day (UTC): "future" means after its end plus the clock skew.
        clock_skew_minutes: allowance after the end of `ds`.

    Returns:
        (clean event with only contract columns, None) or (None, reason) where the reason
        uses the extract's codes (`missing_key:event_id; bad_type:occurred_at`).
    """
    if not isinstance(event, dict):
        return None, "not_an_object"
    cutoff = future_cutoff(ds, clock_skew_minutes)
    clean: dict[str, Any] = {}
    reasons: list[str] = []
    for col in EVENTS.columns:
        value, problems = _column_reasons(col, event.get(col.name), cutoff)
        reasons += problems
        clean[col.name] = value
    if reasons:
        return None, "; ".join(reasons)
    if clean["url"]:
        clean["url"] = _IPV6.sub("<ip>", _IPV4.sub("<ip>", clean["url"]))
    clean["occurred_at"] = clean["occurred_at"].isoformat(timespec="microseconds") + "Z"
    return clean, None


def minimised(event: Any) -> Any:
    """The event as quarantine may keep it: no user agent, no IP fields."""
    if isinstance(event, dict):
        return {k: v for k, v in event.items() if k not in DROPPED_KEYS}
    return event

"""The loop back: who each ESP will not mail lands in the lake as the source `esp`.

Each night, before the export, `pull_suppressions(ds, settings)` asks every API ESP in
`esp_targets` for its unsubscribes, bounces, spam complaints and suppressions (Mailchimp
unsubscribed and cleaned members, SendGrid global and group unsubscribes, bounces and spam
reports, Klaviyo suppressed profiles) and writes them as a delivery of the source `esp`:

    <landing>/esp/<ds>/suppressions.csv
        esp, email_sha256, reason, esp_reason, reported_at

Addresses are hashed on arrival (sha256 of the trimmed, lower-cased email): the warehouse
only needs to match them, so the plain address is never written. The extract then loads the
file like any source (`raw/esp/suppressions/ds=<ds>`), dbt stages it
(`stg_esp__suppressions`) and the export's consent filter drops those people from the next
export on.

A delivery is written once: rerunning a date reuses the file already pulled, so the night
gives the same result (pass `refresh=True` to ask the ESPs again). Every suppression the ESP
holds is kept whatever its date: an unsubscribe is never ignored for being recent.
"""

from __future__ import annotations

import csv
import logging
import os
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from personalization.config import Settings
from personalization.esp.sync_log import SyncLog, sync_db_path
from personalization.observability import StepReport, log_event, timed
from personalization.privacy.emails import email_sha256

logger = logging.getLogger(__name__)

SOURCE = "esp"
FILE_NAME = "suppressions.csv"
COLUMNS = ("esp", "email_sha256", "reason", "esp_reason", "reported_at")
API_ESPS = ("mailchimp", "sendgrid", "klaviyo")
REASONS = ("unsubscribe", "bounce", "spam_complaint", "invalid_email", "manual")


def delivery_path(ds: date, settings: Settings) -> Path:
    return settings.landing_dir / SOURCE / ds.isoformat() / FILE_NAME


def pull_suppressions(ds: date, settings: Settings, refresh: bool = False) -> StepReport:
    """Write `<landing>/esp/<ds>/suppressions.csv` from every configured API ESP.

    With no API ESP configured the file is written empty (a delivery of nothing), so the
    extract and the warehouse see the same shape every night.

    Returns:
        A StepReport: rows_out = suppressions written (distinct esp, hash, reason).

    Raises:
        SyncError: missing credentials, or an ESP failing after all retries (nothing is
            written then, so the night stops before exporting to people it may not mail).
    """
    from personalization.esp import make_adapter

    path = delivery_path(ds, settings)
    if path.exists() and not refresh:
        log_event(logger, "esp_feedback_reused", path=str(path))
        return StepReport(step="pull_esp_suppressions", ds=ds.isoformat(), status="skipped",
                          details={"path": str(path), "reason": "already pulled"})
    with timed() as t:
        rows: set[tuple[str, str, str, str, str]] = set()
        per_esp: dict[str, int] = {}
        for esp in (e for e in settings.esp_targets if e in API_ESPS):
            log = SyncLog(sync_db_path(settings.home), esp, ds, uuid.uuid4().hex[:12])
            try:
                adapter = make_adapter(esp, settings, log, "delta")
                try:
                    found = {(esp, email_sha256(s.email), s.reason, s.esp_reason,
                              _utc_text(s.reported_at))
                             for s in adapter.suppressions() if s.email and s.email.strip()}
                finally:
                    adapter.close()
            finally:
                log.close()
            per_esp[esp] = len(found)
            rows |= found
        _write_atomically(path, sorted(rows))
    log_event(logger, "esp_feedback_pulled", ds=ds.isoformat(), rows=len(rows),
              per_esp=per_esp, seconds=t["seconds"])
    return StepReport(step="pull_esp_suppressions", ds=ds.isoformat(), rows_in=len(rows),
                      rows_out=len(rows), seconds=t["seconds"],
                      details={"path": str(path), "per_esp": per_esp})


def _utc_text(value: datetime | None) -> str:
    """`YYYY-MM-DD HH:MM:SS` in UTC (the lake's timestamps are UTC without offset)."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ", timespec="seconds")


def _write_atomically(path: Path, rows: list[tuple]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    os.replace(tmp, path)

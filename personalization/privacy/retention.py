"""Retention: what is older than its window is deleted every night, and reported.

| setting | default | what goes |
|---|---|---|
| `retention_pixel_events_days` | 396 (13 months) | lake `raw/pixel/events` and `raw/pixel/intake_events` partitions, the intake's day files and their landing files; trigger decisions (`raw/triggers/sends`); the warehouse's loaded events of those deliveries |
| `retention_quarantine_days` | 30 | lake `quarantine/*/*` partitions |
| `retention_exports_days` | 90 | export folders (never the one `latest` points to), their exclusion records (`export_audit/`) and ESP drop folders |
| `retention_logs_days` | 30 | per-run records: ESP sync run summaries, quality results, privacy reports (by ds); files in the logs folder (by age) |

Windows count back from the run's logical date `ds` (a partition of `ds - window` or older
goes), so backfills behave like the nightly run; 0 keeps forever. Log files carry no
logical date, so they go by modification time.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

from personalization import lake
from personalization.config import Settings
from personalization.observability import StepReport, timed
from personalization.privacy import encryption
from personalization.privacy.erasure import _finish

logger = logging.getLogger(__name__)

_DS = re.compile(r"^(?:ds=)?(\d{4}-\d{2}-\d{2})$")


def _older(path: Path, cutoff: date) -> bool:
    match = _DS.match(path.name)
    return bool(match) and date.fromisoformat(match.group(1)) <= cutoff


def _remove(paths: list[Path], settings: Settings) -> list[dict]:
    out = []
    for path in sorted(paths):
        if path.is_symlink() or not path.exists():
            continue
        files = sum(1 for p in path.rglob("*") if p.is_file()) if path.is_dir() else 1
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        out.append({"path": path.relative_to(settings.home).as_posix()
                    if path.is_relative_to(settings.home) else str(path),
                    "rows_removed": 0, "files_deleted": files})
    return out


def _cutoff(ds: date, days: int) -> date | None:
    return ds - timedelta(days=days) if days > 0 else None


def enforce_retention(ds: date, settings: Settings) -> StepReport:
    """Delete everything older than its retention window (as of `ds`); report what went."""
    with timed() as t:
        areas: dict[str, list[dict]] = {}
        pixel = _cutoff(ds, settings.retention_pixel_events_days)
        if pixel:
            partitions = [p for p in lake.table_dir(settings, "pixel/events").glob(lake.ds_dir(None))
                          if _older(p, pixel)]
            # Events that came through the real-time intake go with the pixel's own, and
            # so do the trigger decisions made on them.
            partitions += [p for table in ("pixel/intake_events", "triggers/sends")
                           for p in lake.table_dir(settings, table).glob(lake.ds_dir(None))
                           if _older(p, pixel)]
            partitions += [p for p in (settings.intake_dir / "pixel").glob("*")
                           if _older(p, pixel)]
            areas["pixel_events"] = _remove(partitions, settings)
            if settings.landing_owned:
                areas["pixel_events"] += _remove(
                    [p / "events.jsonl.gz" for p in (settings.landing_dir / "pixel").glob("*")
                     if _older(p, pixel)], settings)
            areas["pixel_events"] += _expire_loaded_events(settings, pixel)
        quarantine = _cutoff(ds, settings.retention_quarantine_days)
        if quarantine:
            areas["quarantine"] = _remove(
                [p for p in lake.area_partitions(settings, "quarantine")
                 if _older(p, quarantine)], settings)
        exports = _cutoff(ds, settings.retention_exports_days)
        if exports:
            latest = settings.exports_dir / "latest"
            keep = os.readlink(latest) if latest.is_symlink() else None
            areas["exports"] = _remove(
                [p for p in settings.exports_dir.glob("*") if _older(p, exports)
                 and p.name != keep], settings)
            # The export's exclusion records (hashes, for the portal's contact lookup).
            areas["exports"] += _remove(
                [p for p in (settings.home / "export_audit").glob("*") if _older(p, exports)
                 and p.name != keep], settings)
            areas["esp_drop"] = _remove(
                [p for p in (settings.home / "esp_drop").glob("*") if _older(p, exports)],
                settings)
        logs = _cutoff(ds, settings.retention_logs_days)
        if logs:
            dated = [*settings.home.glob("esp_sync_runs/*/*"), *settings.quality_dir.glob("*"),
                     *(settings.home / "privacy" / "reports").glob("*")]
            areas["logs"] = _remove([p for p in dated if _older(p, logs)], settings)
            horizon = time.time() - settings.retention_logs_days * 86400
            areas["logs"] += _remove([p for p in settings.logs_dir.rglob("*")
                                      if p.is_file() and p.stat().st_mtime < horizon], settings)
    report = _finish(ds, settings, "enforce_retention", areas, t["seconds"],
                     {"windows_days": {"pixel_events": settings.retention_pixel_events_days,
                                       "quarantine": settings.retention_quarantine_days,
                                       "exports": settings.retention_exports_days,
                                       "logs": settings.retention_logs_days}})
    report.rows_in = sum(e.get("files_deleted", 0) for v in areas.values() for e in v)
    return report


def _expire_loaded_events(settings: Settings, cutoff: date) -> list[dict]:
    """The warehouse keeps loaded events incrementally: drop those of expired deliveries
    (the marts built from them follow at the next build)."""
    if not settings.warehouse_path.exists():
        return []
    con = encryption.connect_warehouse(settings, read_only=False)
    try:
        exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE "
                             "table_name = 'stg_pixel__events' AND table_type = 'BASE TABLE' "
                             "AND table_catalog = current_database()").fetchone()[0]
        if not exists:
            return []
        where = f"delivered_on <= DATE '{cutoff.isoformat()}'"
        removed = con.execute(f"SELECT count(*) FROM stg_pixel__events WHERE {where}").fetchone()[0]
        if removed:
            con.execute(f"DELETE FROM stg_pixel__events WHERE {where}")
    finally:
        con.close()
    return [{"path": f"{settings.warehouse_path.name}#stg_pixel__events",
             "rows_removed": removed}] if removed else []

"""Stale-segment carry-over: a segment whose build failed keeps the files of the newest
earlier export that has them, flagged `stale` with the reason, so marketers never get an
empty list by accident."""

from __future__ import annotations

import logging
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from personalization.export import deltas, files, mailable, manifest
from personalization.export.segments import campaign_of, segment_files
from personalization.observability import log_event
from personalization.sql import literal
from personalization.warehouse.catalog import Segment

logger = logging.getLogger(__name__)


def carry_over(con: duckdb.DuckDBPyConnection, segment: Segment, reason: str, ds: date,
                   tmp: Path, exports_dir: Path) -> dict[str, Any]:
    """Carry the segment's files over from the newest earlier export that has them."""
    campaign, variants = campaign_of(segment)
    entry: dict[str, Any] = {
        "name": segment.name, "description": segment.description, "owner": segment.owner,
        "campaign_id": campaign, "variants": variants, "stale": True, "stale_reason": reason,
    }
    source = next((exports_dir / d for d in reversed(files.published_dates(exports_dir))
                   if d < ds.isoformat()
                   and (exports_dir / d / "segments" / f"{segment.name}.parquet").exists()), None)
    log_event(logger, "export_segment_stale", logging.WARNING, segment=segment.name,
              reason=reason, kept_from=source.name if source else None)
    if source is None:
        return {**entry, "data_ds": None, "rows": 0, "added": 0, "removed": 0, "changed": 0,
                "holdout": 0, "mailable_rows": 0, "files": {}}
    seg_dir = tmp / "segments"
    seg_dir.mkdir(parents=True, exist_ok=True)
    for ext in ("csv", "parquet"):
        shutil.copyfile(source / "segments" / f"{segment.name}.{ext}",
                        seg_dir / f"{segment.name}.{ext}")
    parquet = seg_dir / f"{segment.name}.parquet"
    rows, holdout = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE is_holdout) FROM read_parquet({literal(parquet)})"
    ).fetchone()
    prev_entry = next((s for s in manifest.read_manifest(source / "manifest.json").get("segments", [])
                       if s.get("name") == segment.name), {})
    delta = deltas.write_empty_deltas(con, parquet, tmp / "deltas", segment.name)
    mailable_rows = mailable.write_mailable(
        con, f"read_parquet({literal(parquet)})",
        tmp / mailable.MAILABLE_DIR / f"{segment.name}.csv")
    return {**entry, "data_ds": prev_entry.get("data_ds") or source.name, "rows": rows,
            "added": 0, "removed": 0, "changed": 0, "holdout": holdout,
            "mailable_rows": mailable_rows,
            "files": segment_files(tmp, segment.name, delta)}

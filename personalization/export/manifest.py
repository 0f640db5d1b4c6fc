"""What the manifest records besides the segments: gate results, models, source dates."""

from __future__ import annotations

import json
import logging
import re
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from personalization import lake
from personalization.config import Settings

logger = logging.getLogger(__name__)

GATE_STAGES = ("lake", "marts", "segments")
MANIFEST_VERSION = 1
# What each kind of file under a segment's `files` holds (shown next to every download).
FILE_KINDS = {
    "mailable": "mailable/<segment>.csv: the list to upload to an ESP. Holdout removed; "
                "email, merge tags, segment columns and VARIANT only.",
    "csv": "segments/<segment>.csv: FULL list for analysis, INCLUDING the holdout "
           "(is_holdout = true: never mail these) and unified_id, FALLBACKS, variant. "
           "Do not upload to an ESP.",
    "parquet": "segments/<segment>.parquet: the full list (as csv), exact typed values, "
               "for machines and ESP syncs.",
    "added": "deltas/<segment>.added.csv: full rows that entered since the previous export "
             "(holdout included, flagged).",
    "removed": "deltas/<segment>.removed.csv: unified_id, email of people who left.",
    "changed": "deltas/<segment>.changed.csv: full rows whose merge fields, variant or "
               "holdout flag changed.",
}
_DS = re.compile(r"^ds=(\d{4}-\d{2}-\d{2})$")


def created_at(ds: date) -> str:
    """The logical creation time: the end of `ds` (never the wall clock, so reruns match)."""
    return f"{ds.isoformat()}T23:59:59Z"


def gate_results(ds: date, settings: Settings) -> dict[str, str]:
    """`status` of the earlier quality gates from `<quality_dir>/<ds>/<stage>.json`."""
    out = {}
    for stage in GATE_STAGES:
        path = settings.quality_dir / ds.isoformat() / f"{stage}.json"
        if not path.exists():
            out[stage] = "missing"
            continue
        try:
            out[stage] = str(json.loads(path.read_text()).get("status", "unknown"))
        except (OSError, ValueError, AttributeError) as e:
            logger.warning("cannot read gate result %s: %s", path, e)
            out[stage] = "unreadable"
    return out


def source_dates(ds: date, settings: Settings) -> dict[str, str | None]:
    """Newest loaded `ds` (≤ ds) per lake table, from the load-log partitions."""
    out: dict[str, str | None] = {}
    for table_dir in sorted({p.parent for p in lake.area_partitions(settings, "load_log")}):
        dates = [m.group(1) for p in table_dir.iterdir()
                 if (m := _DS.match(p.name)) and (p / lake.PART_FILE).exists()]
        dates = [d for d in dates if d <= ds.isoformat()]
        out[f"{table_dir.parent.name}/{table_dir.name}"] = max(dates) if dates else None
    return out


def model_versions(con: duckdb.DuckDBPyConnection, source: str = "wh.main") -> dict[str, list[str]]:
    """Distinct VIP and churn model versions in `customer_scores`."""
    out = {}
    for name in ("vip", "churn"):
        rows = con.execute(
            f"SELECT DISTINCT CAST({name}_model_version AS VARCHAR) FROM {source}.customer_scores "
            f"WHERE {name}_model_version IS NOT NULL ORDER BY 1"
        ).fetchall()
        out[name] = [r[0] for r in rows]
    return out


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Stable bytes: fixed key order as built, UTF-8, trailing newline."""
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n",
                    encoding="utf-8")


def read_manifest(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))

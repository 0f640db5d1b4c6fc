"""Which segments failed tonight: reported by the segment build, missing from the warehouse,
or in error in dbt's `run_results.json` / the segment build record of this `ds`."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import date

import duckdb

from personalization.config import Settings
from personalization.warehouse.catalog import Segment

logger = logging.getLogger(__name__)

FAILED_DBT_STATUSES = {"error", "fail", "skipped", "runtime error"}


def find_failed_segments(con: duckdb.DuckDBPyConnection, segments: list[Segment], ds: date,
                         settings: Settings, reported: Iterable[str] = ()) -> dict[str, str]:
    """Segments whose build failed: reported by the caller, missing from the warehouse, or
    in error/skipped in dbt's `run_results.json` of this `ds`. Returns name -> reason."""
    failed = {name: "reported failed by the segment build" for name in reported}
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_catalog = 'wh' AND table_schema = 'main'").fetchall()}
    names = {s.name for s in segments}
    for name in sorted(names - tables):
        failed.setdefault(name, "table missing from the warehouse")
    # What the segment build recorded for this ds (run_results.json only holds the last call).
    record = settings.dbt_target_dir / f"segment_build_{ds.isoformat()}.json"
    if record.exists():
        for name, message in json.loads(record.read_text()).get("failed_segments", {}).items():
            if name in names:
                failed.setdefault(name, f"segment build failed: {message}")
    run_results = settings.dbt_target_dir / "run_results.json"
    if run_results.exists():
        try:
            data = json.loads(run_results.read_text())
        except ValueError as e:
            logger.warning("cannot read %s: %s", run_results, e)
            data = {}
        run_vars = (data.get("args") or {}).get("vars") or {}
        run_ds = run_vars.get("ds") if isinstance(run_vars, dict) else None
        if run_ds in (None, ds.isoformat()):
            for result in data.get("results", []):
                parts = str(result.get("unique_id", "")).split(".")
                if parts[0] == "model" and parts[-1] in names \
                        and str(result.get("status")) in FAILED_DBT_STATUSES:
                    failed.setdefault(parts[-1], f"dbt status {result.get('status')}")
    return failed

"""`erasures.csv` (the requesters the ESP sync must delete, `is_new` since the previous
export) and `consent.parquet` (for every exported contact, the record whose consent the export
relied on)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from personalization.export import files
from personalization.sql import literal


def write_erasures(con: duckdb.DuckDBPyConnection, tmp: Path, previous: Path | None) -> dict[str, Any]:
    prev_csv = previous / "erasures.csv" if previous else None
    if prev_csv is not None and prev_csv.exists():
        is_new = (f"email_sha256 NOT IN (SELECT email_sha256 FROM "
                  f"read_csv({literal(prev_csv)}, header=true, all_varchar=true))")
    else:
        is_new = "true"
    query = f"""SELECT email, email_sha256, strftime(requested_at, '%Y-%m-%dT%H:%M:%SZ') AS requested_at,
                       {is_new} AS is_new
                FROM export_erasures"""
    path = tmp / "erasures.csv"
    files.write_csv(con, query, path, neutralise=False, order_by="email_sha256")
    rows, new = con.execute(f"SELECT count(*), count(*) FILTER (WHERE is_new) FROM ({query})").fetchone()
    return {"rows": rows, "new": new, "file": files.file_entry(path, tmp)}


def write_consent_audit(con: duckdb.DuckDBPyConnection, tmp: Path, wh: str) -> dict[str, Any] | None:
    """`consent.parquet`: for every exported contact, the source record and timestamp whose
    consent the export relied on (the `consent_audit` mart). None when the mart is missing."""
    has_audit = files.has_warehouse_table(con, "consent_audit")
    segment_files = sorted((tmp / "segments").glob("*.parquet"))
    if not has_audit or not segment_files:
        return None
    files_sql = ", ".join(literal(f) for f in segment_files)
    query = f"""
        SELECT c.unified_id, c.consent_source, c.consent_source_id, c.consent_recorded_at,
               c.opted_in_at
        FROM {wh}.consent_audit AS c
        WHERE c.unified_id IN (SELECT CAST(unified_id AS VARCHAR)
                               FROM read_parquet([{files_sql}], union_by_name = true))
        ORDER BY c.unified_id"""
    path = tmp / "consent.parquet"
    rows = files.write_parquet(con, query, path)
    return {"rows": rows, "file": files.file_entry(path, tmp)}

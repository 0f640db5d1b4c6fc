"""Added / removed / changed contacts of one segment versus the previous export."""

from __future__ import annotations

from pathlib import Path

import duckdb

from personalization.export.files import column_types, write_csv
from personalization.sql import literal

# A contact in the ESP is a person at an email: a changed email is a removal plus an addition.
KEY = ("unified_id", "email")
REMOVED_COLUMNS = KEY


def _same_key(a: str, b: str) -> str:
    return " AND ".join(f"{a}.{k} = {b}.{k}" for k in KEY)


def write_deltas(con: duckdb.DuckDBPyConnection, current: str, previous_parquet: Path | None,
                 out_dir: Path, segment: str) -> dict[str, Path | int]:
    """Write `<segment>.added.csv`, `.removed.csv` and `.changed.csv` into `out_dir`.

    Args:
        current: the temp table holding this export's rows of the segment.
        previous_parquet: the segment's Parquet in the previous export (None: all added).

    Returns:
        counts `added`, `removed`, `changed` and the paths under `<kind>_path`.
    """
    if previous_parquet is not None and previous_parquet.exists():
        prev = f"read_parquet({literal(previous_parquet)})"
    else:
        prev = f"(SELECT * FROM {current} WHERE false)"
    con.execute(f"CREATE OR REPLACE TEMP TABLE export_previous AS SELECT * FROM {prev}")
    queries = {
        "added": f"""SELECT c.* FROM {current} AS c
                     WHERE NOT EXISTS (SELECT 1 FROM export_previous AS p WHERE {_same_key('c', 'p')})""",
        "removed": f"""SELECT {', '.join('p.' + k for k in REMOVED_COLUMNS)} FROM export_previous AS p
                       WHERE NOT EXISTS (SELECT 1 FROM {current} AS c WHERE {_same_key('c', 'p')})""",
    }
    same_schema = column_types(con, current) == column_types(con, "export_previous")
    kept = f"""SELECT c.* FROM {current} AS c
               WHERE EXISTS (SELECT 1 FROM export_previous AS p WHERE {_same_key('c', 'p')})"""
    if same_schema:
        queries["changed"] = f"SELECT * FROM ({kept} EXCEPT SELECT * FROM export_previous)"
    else:
        # New or dropped columns: every kept contact has changed merge fields.
        queries["changed"] = kept
    out: dict[str, Path | int] = {}
    for kind, query in queries.items():
        path = out_dir / f"{segment}.{kind}.csv"
        out[kind] = write_csv(con, query, path, neutralise=False, order_by=", ".join(KEY))
        out[f"{kind}_path"] = path
    return out


def write_empty_deltas(con: duckdb.DuckDBPyConnection, parquet: Path, out_dir: Path,
                       segment: str) -> dict[str, Path | int]:
    """Empty delta files (headers only) for a stale segment: its list did not change."""
    empty = f"SELECT * FROM read_parquet({literal(parquet)}) WHERE false"
    out: dict[str, Path | int] = {}
    for kind in ("added", "removed", "changed"):
        query = empty if kind != "removed" else f"SELECT {', '.join(REMOVED_COLUMNS)} FROM ({empty})"
        path = out_dir / f"{segment}.{kind}.csv"
        write_csv(con, query, path, neutralise=False)
        out[kind] = 0
        out[f"{kind}_path"] = path
    return out

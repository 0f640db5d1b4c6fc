"""The erasure ledger: hashes of everything that identifies an erased person, nothing else.

`<home>/privacy/erasure_ledger.parquet`, one row per `(key_sha256, key_kind)`:

| key_kind | key_sha256 of | matches |
|---|---|---|
| `email` | the trimmed, lower-cased email | `email`, `email_normalized`, `email_sha256` |
| `record` | `<source>:<source_id>` (crm, shop, pixel, guest) | `contact_id`, `customer_id`, `anonymous_id`, identity record keys |
| `order` | `order:<order_id>` | `order_id` |
| `unified` | `unified:<unified_id>` | `unified_id` and the identity tables' other person ids |

plus `erased_on`, the night the key was first recorded, and `applied_on`, the night every
copy was cleaned of it (null until then, so an interrupted night is finished by the next
run). Because it holds only hashes it can stay forever: data re-delivered after an erasure
is matched against it on arrival.
"""

from __future__ import annotations

import os
import uuid
from datetime import date
from pathlib import Path

import duckdb

from personalization.config import Settings
from personalization.privacy import encryption
from personalization.sql import literal

KINDS = ("email", "record", "order", "unified")
TABLE = "erasure_ledger"


def privacy_dir(settings: Settings) -> Path:
    return settings.home / "privacy"


def ledger_path(settings: Settings) -> Path:
    return privacy_dir(settings) / "erasure_ledger.parquet"


def read_parquet_sql(settings: Settings, path_or_glob: str | Path, extra: str = "") -> str:
    """`read_parquet(...)` with the lake's encryption options."""
    return (f"read_parquet({literal(path_or_glob)}{extra}"
            f"{encryption.parquet_read_options(settings)})")


def own_parquet_sql(settings: Settings, path: str | Path, extra: str = "") -> str:
    """`read_parquet` of one file with its own columns only: DuckDB adds a `ds` column to a
    file under a `ds=<date>` folder (hive partitioning), which a rewrite would then store."""
    return read_parquet_sql(settings, path, ", hive_partitioning = false" + extra)


def relation_columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    """The column names of a table, file reader or subquery, in order."""
    return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]


def own_columns(columns: list[str], path: str | Path, hidden: tuple[str, ...] = ()) -> str:
    """The select list that rewrites one file (read by `own_parquet_sql`, with `columns`)
    with the columns it should have, less `hidden` ones: a `ds` stored in a file under a
    `ds=` folder is the folder's (the lake, quarantine and scores files never hold one; a
    redaction before 2026-12-07 stored it), and leaves on the next rewrite."""
    if "ds" in columns and Path(path).parent.name.startswith("ds="):
        hidden = (*hidden, "ds")
    return f"* EXCLUDE ({', '.join(hidden)})" if hidden else "*"


def copy_atomic(con: duckdb.DuckDBPyConnection, query: str, target: Path, options: str) -> int:
    """`COPY (query) TO target (options)` through a temp file in the same folder and
    `os.replace`: a reader sees the old file or the new one, never half of one. Returns the
    rows written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        written = con.execute(f"COPY ({query}) TO {literal(tmp)} ({options})").fetchone()[0]
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return written


def write_parquet_atomic(con: duckdb.DuckDBPyConnection, settings: Settings, query: str,
                         target: Path, *, zstd_level: int | None = None) -> int:
    """Write `query` to `target` as (optionally encrypted) Parquet, atomically; returns the
    rows written. `zstd_level`: DuckDB's default (3) when None; 1 for files written every
    night and read once (a fifth faster, a seventh larger)."""
    level = "" if zstd_level is None else f", COMPRESSION_LEVEL {int(zstd_level)}"
    return copy_atomic(con, query, target, f"FORMAT parquet, COMPRESSION zstd{level}"
                       f"{encryption.parquet_write_options(settings)}")


def register_ledger(con: duckdb.DuckDBPyConnection, settings: Settings) -> int:
    """Temp table `erasure_ledger(key_sha256, key_kind, erased_on)`; returns its rows."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {TABLE} "
                "(key_sha256 VARCHAR, key_kind VARCHAR, erased_on DATE, applied_on DATE)")
    path = ledger_path(settings)
    if path.exists():
        con.execute(f"INSERT INTO {TABLE} SELECT key_sha256, key_kind, erased_on, applied_on "
                    f"FROM {read_parquet_sql(settings, path)}")
    return con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]


def add_keys(con: duckdb.DuckDBPyConnection, settings: Settings, keys_relation: str,
             ds: date) -> int:
    """Add `(key_sha256, key_kind)` rows of `keys_relation` to the ledger (file and temp
    table); returns how many were new. The file is rewritten atomically."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE ledger_new AS
        SELECT DISTINCT k.key_sha256, k.key_kind, DATE {literal(ds.isoformat())} AS erased_on,
               CAST(NULL AS DATE) AS applied_on
        FROM {keys_relation} AS k
        WHERE k.key_sha256 IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM {TABLE} AS l
                          WHERE l.key_sha256 = k.key_sha256 AND l.key_kind = k.key_kind)
    """)
    added = con.execute("SELECT count(*) FROM ledger_new").fetchone()[0]
    if added:
        con.execute(f"INSERT INTO {TABLE} SELECT * FROM ledger_new")
        save(con, settings)
    return added


def save(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    write_parquet_atomic(con, settings, f"SELECT * FROM {TABLE} ORDER BY key_kind, key_sha256",
                         ledger_path(settings))


def mark_applied(con: duckdb.DuckDBPyConnection, settings: Settings, ds: date) -> None:
    """Every pending key has now been removed from every copy."""
    if con.execute(f"SELECT count(*) FROM {TABLE} WHERE applied_on IS NULL").fetchone()[0]:
        con.execute(f"UPDATE {TABLE} SET applied_on = DATE {literal(ds.isoformat())} "
                    "WHERE applied_on IS NULL")
        save(con, settings)

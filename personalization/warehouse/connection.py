"""A connection to the DuckDB warehouse for the pipeline's own bookkeeping around dbt: its
DuckDB errors (missing file, lock held by another process, corrupt file) become a
WarehouseError that says what was being done, so the CLI shows one line, not a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from personalization.config import Settings
from personalization.exceptions import WarehouseError


@contextmanager
def warehouse_connection(settings: Settings, doing: str, read_only: bool = True) -> Iterator[Any]:
    """Yield a connection to the warehouse; `doing` completes "cannot ... in <warehouse>"."""
    import duckdb

    from personalization.privacy.encryption import connect_warehouse

    try:
        with connect_warehouse(settings, read_only=read_only) as con:
            yield con
    except duckdb.Error as e:
        raise WarehouseError(f"cannot {doing} in {settings.warehouse_path}: {e}") from e


def tables_in(con: Any, schema: str) -> set[str]:
    """The names of the tables in `schema` of the warehouse."""
    return {row[0] for row in con.execute(
        "select table_name from information_schema.tables where table_schema = ?", [schema]
    ).fetchall()}

"""The nights whose marts data tests all passed, kept in the warehouse: where the next night's
test window on the largest incremental tables starts (dbt_project/macros/recent_deliveries.sql).

Those tests check the rows the nights since the newest passing one wrote, each against the whole
table. A row delivered (or written) on or before a passing night was checked by it, and only a
rerun of that very night rewrites it, so the window starts after the newest passing night
before `ds`, or the night before `ds`, whichever is earlier. A window of a fixed three deliveries
re-checked the first build's backfill on the two nights after it: at 3M people, 158M events
whose uniqueness test filled the disk.

A night's record is removed before its build starts, so a failed or interrupted rerun cannot
leave the earlier pass standing; a full refresh (every row rewritten) removes every record.
Spark rebuilds and checks these tables whole: nothing is kept there.
"""

from __future__ import annotations

from datetime import date

from personalization.config import Settings
from personalization.warehouse.connection import tables_in, warehouse_connection

_SCHEMA, _NAME = "pipeline_state", "marts_tests_passed"
_TABLE = f"{_SCHEMA}.{_NAME}"
_DDL = (f"create schema if not exists {_SCHEMA}; "
        f"create table if not exists {_TABLE} (ds date primary key, passed_at timestamp)")
_DOING = "read or record the tested nights"


def forget(ds: date, settings: Settings, everything: bool = False) -> None:
    """Remove the record of `ds` and of any later night (every record when `everything`)."""
    if _untracked(settings) or not settings.warehouse_path.exists():
        return
    with warehouse_connection(settings, _DOING, read_only=False) as con:
        con.execute(_DDL)
        con.execute(f"delete from {_TABLE}" + ("" if everything else " where ds >= ?"),
                    [] if everything else [ds])


def record(ds: date, settings: Settings) -> None:
    """Record that the marts build of `ds` passed every data test."""
    if _untracked(settings):
        return
    with warehouse_connection(settings, _DOING, read_only=False) as con:
        con.execute(_DDL)
        con.execute(f"insert or replace into {_TABLE} values (?, current_timestamp)", [ds])


def passed_through(ds: date, settings: Settings) -> date | None:
    """The newest night up to `ds` whose marts tests passed, or None when none is recorded."""
    if _untracked(settings) or not settings.warehouse_path.exists():
        return None
    with warehouse_connection(settings, _DOING) as con:
        if _NAME not in tables_in(con, _SCHEMA):
            return None
        return con.execute(f"select max(ds) from {_TABLE} where ds <= ?", [ds]).fetchone()[0]


def _untracked(settings: Settings) -> bool:
    return settings.engine == "spark"


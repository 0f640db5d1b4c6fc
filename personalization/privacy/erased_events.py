"""Events removed for someone else's erasure, and the persons whose event marts follow them.

The erase step removes an event from `stg_pixel__events` when any of its columns names an
erased person, also an erased address's hash on a cookie identity did not join to that
person (a shared computer clicking a mail sent to the address). The event then leaves every
table holding its `event_id` (`redact.warehouse`), and its person, not erased, is listed in
`PERSONS` with the night: the next night's per-person event marts recompute them
(`int_events__expired_persons`). docs/privacy.md, "Erasure".

Warehouses whose erasures ran before that (2026-12-05) may hold such events in
`int_events__resolved` still: `repair` removes them once, before the first incremental marts
build that finds no `PERSONS` table (a first build or a full refresh creates it: its event
tables are the staged events').
"""

from __future__ import annotations

import logging
from datetime import date

from personalization.config import Settings
from personalization.observability import log_event, timed
from personalization.warehouse.connection import tables_in, warehouse_connection

STAGED = "stg_pixel__events"
RESOLVED = "int_events__resolved"
_SCHEMA, _NAME = "pipeline_state", "erased_event_persons"
PERSONS = f"{_SCHEMA}.{_NAME}"
logger = logging.getLogger(__name__)
DDL = (f"CREATE SCHEMA IF NOT EXISTS {_SCHEMA}; "
       f"CREATE TABLE IF NOT EXISTS {PERSONS} (unified_id VARCHAR, removed_on DATE)")


def delete_listing_persons(con, relation: str, condition: str, ds: date, erased: str = "false",
                           params: dict | None = None) -> int:
    """Delete the event rows of `relation` matching `condition` and list their persons as
    removed on `ds`, but those `erased` (SQL on the deleted rows, `deleted_rows`: true for an
    erased person's row); returns the rows deleted."""
    deleted = con.execute(f"DELETE FROM {relation} WHERE {condition} RETURNING unified_id",
                          params).fetchdf()
    if len(deleted):
        con.register("deleted_rows", deleted)
        try:
            con.execute(f"INSERT INTO {PERSONS} SELECT DISTINCT unified_id, ? FROM deleted_rows "
                        f"WHERE unified_id IS NOT NULL AND NOT {erased}", [ds])
        finally:
            con.unregister("deleted_rows")
    return len(deleted)


def _untracked(settings: Settings) -> bool:
    """Nothing to keep: no warehouse yet, or the Spark engine, which rebuilds the event tables
    whole."""
    return settings.engine == "spark" or not settings.warehouse_path.exists()


def mark_consistent(settings: Settings) -> None:
    """After a build that wrote the event tables from the staged events whole (the first, or
    a full refresh): nothing to repair there."""
    if _untracked(settings):
        return
    with warehouse_connection(settings, "record the erased events' list", read_only=False) as con:
        con.execute(DDL)


def repair(ds: date, settings: Settings) -> int | None:
    """Once per warehouse: delete the events of `int_events__resolved` that are gone from the
    staged events, listing their persons as removed after the last delivery loaded before
    `ds` (tonight's build recomputes them). Returns the rows deleted; None when there was
    nothing to check (done before, or `_untracked`)."""
    if _untracked(settings):
        return None
    with timed() as t, warehouse_connection(settings, "repair the erased events",
                                            read_only=False) as con:
        if _NAME in tables_in(con, _SCHEMA):
            return None
        # One transaction: the list's table says the repair is done, so an interrupted one
        # must leave neither.
        con.execute("BEGIN TRANSACTION")
        con.execute(DDL)
        if not {STAGED, RESOLVED} <= tables_in(con, "main"):
            con.execute("COMMIT")
            return None
        removed_on = con.execute(f"SELECT max(delivered_on) FROM {RESOLVED} WHERE delivered_on < ?",
                                 [ds]).fetchone()[0] or ds
        deleted = 0
        # One delivery at a time (an event keeps its delivery in both tables): a join over
        # every event id at once would hash ~100M strings at 1M people.
        # (Deliveries retention removed are the build's own: int_events__expired_persons.)
        for (delivered_on,) in con.execute(
                f"SELECT DISTINCT delivered_on FROM {RESOLVED} WHERE delivered_on >= "
                f"(SELECT min(delivered_on) FROM {STAGED}) ORDER BY 1").fetchall():
            deleted += delete_listing_persons(
                con, RESOLVED, f"delivered_on = $d AND event_id NOT IN "
                f"(SELECT event_id FROM {STAGED} WHERE delivered_on = $d)", removed_on,
                params={"d": delivered_on})
        con.execute("COMMIT")
    log_event(logger, "erased_events_repaired", ds=ds.isoformat(), rows_removed=deleted,
              seconds=t["seconds"])
    return deleted


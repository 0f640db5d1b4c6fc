"""Read-only access to the warehouse for scoring and training.

Scoring runs between two dbt builds; it must never take DuckDB's single write lock, so every
connection here is opened `read_only=True`.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from personalization.config import Settings
from personalization.exceptions import ScoringError
from personalization.privacy.encryption import connect_warehouse

REQUIRED_TABLES = ("customer_profiles", "orders", "order_items", "customer_events",
                   "customer_engagement_daily", "products", "identity_merges")


def connect_read_only(settings: Settings) -> duckdb.DuckDBPyConnection:
    """Open the warehouse read-only with the configured memory and thread limits.

    Raises:
        ScoringError: the warehouse file is missing, locked by a writer, or lacks a mart.
    """
    path = Path(settings.warehouse_path)
    if not path.exists():
        raise ScoringError(f"warehouse not found at {path}; build the marts first")
    try:
        con = connect_warehouse(settings, read_only=True)
    except duckdb.Error as e:
        raise ScoringError(f"cannot open warehouse {path} read-only: {e}") from e
    present = {r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = 'main'").fetchall()}
    missing = [t for t in REQUIRED_TABLES if t not in present]
    if missing:
        con.close()
        raise ScoringError(f"warehouse {path} lacks the mart(s) {missing}; run the marts build")
    return con


# Events new since a kept night (`$since`, whose cut-off is `$since + 1 day`), up to tonight's
# `$cutoff`. The kept state holds every event that was loaded when that night ran (delivered
# on or before `$delivered_until`, the latest `delivered_on` then) and happened before its
# cut-off; what it lacks is what was delivered after that, plus what was already loaded but
# happened after its cut-off (a rerun of an older night on a newer warehouse; clocks ahead).
# Two selects, not one `or`: each is pruned by the row groups' min/max of its own column.
# Anything else that changes a person's events (merges, splits, reloads) is caught by the
# checksums of viewed.py and send_hour.py.
def events_since_kept_sql(columns: str, where: str) -> str:
    """`columns` of the `customer_events` rows matching `where` that the kept night did not
    see and tonight's cut-off does (needs `$since`, `$delivered_until`, `$cutoff`)."""
    return f"""
select {columns} from customer_events
where {where} and delivered_on > $delivered_until::date and occurred_at < $cutoff::timestamp
union all
select {columns} from customer_events
where {where} and coalesce(delivered_on <= $delivered_until::date, true)
  and occurred_at >= ($since::date + 1)::timestamp and occurred_at < $cutoff::timestamp
"""


def delivered_until(con: duckdb.DuckDBPyConnection) -> str | None:
    """The latest `delivered_on` in the events (ISO date), for the kept state's meta."""
    value = con.execute("select max(delivered_on) from customer_events").fetchone()[0]
    return value and value.isoformat()

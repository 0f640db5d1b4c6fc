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
        con = connect_warehouse(settings, read_only=True, config={
            "memory_limit": settings.duckdb_memory_limit,
            "threads": settings.duckdb_threads,
        })
    except duckdb.Error as e:
        raise ScoringError(f"cannot open warehouse {path} read-only: {e}") from e
    present = {r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = 'main'").fetchall()}
    missing = [t for t in REQUIRED_TABLES if t not in present]
    if missing:
        con.close()
        raise ScoringError(f"warehouse {path} lacks the mart(s) {missing}; run the marts build")
    return con

"""The warehouse facts the trigger runner needs, published by the nightly run as Parquet.

The runner must keep deciding while the nightly build holds DuckDB's single write lock, so
it never opens the warehouse: after the marts pass their gate, the step
`publish_trigger_context` writes a snapshot (who is who, who may be emailed, products,
recommendations) and swaps a symlink to it atomically. Intraday changes that matter for
privacy (ESP suppressions, erasure requests) are read fresh by the runner on every tick.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from datetime import date
from pathlib import Path

import duckdb

from personalization.config import Settings
from personalization.exceptions import ExportError
from personalization.observability import StepReport, log_event
from personalization.privacy import encryption
from personalization.sql import literal

logger = logging.getLogger(__name__)

CONTEXT_LINK = "context"

# One query per file; every one reads only public marts (docs/design.md).
QUERIES = {
    "people": """
        select unified_id, email, email_sha256, first_name, language, country,
               coalesce(is_contactable, false) as is_contactable,
               coalesce(is_erased, false) as is_erased,
               coalesce(is_unsubscribed, false) as is_unsubscribed,
               coalesce(is_opted_in, false) as is_opted_in
        from customer_profiles
    """,
    # How an event finds its person: shop login, cookie, or the hash in an email link.
    "keys": """
        select 'customer_id' as key_type, source_id as key, unified_id
        from identity_map where source = 'shop'
        union all
        select 'anonymous_id', source_id, unified_id from identity_map where source = 'pixel'
        union all
        select 'email_sha256', email_sha256, unified_id
        from customer_profiles where email_sha256 is not null
    """,
    "products": "select sku, name, category, price, is_active from products",
    "recommendations": """
        select unified_id, next_best_products from customer_scores
        where next_best_products is not null
    """,
}


def context_dir(settings: Settings) -> Path:
    """The current snapshot (a symlink swapped atomically by each publish)."""
    return settings.triggers_state_dir / CONTEXT_LINK


def publish_context(ds: date, settings: Settings) -> StepReport:
    """Write the trigger runner's snapshot of the warehouse for `ds` and make it current.

    Raises:
        ExportError: the warehouse cannot be read.
    """
    start = time.perf_counter()
    root = settings.triggers_state_dir
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"context-{ds.isoformat()}-{uuid.uuid4().hex[:8]}"
    target.mkdir()
    rows: dict[str, int] = {}
    try:
        con = encryption.connect_warehouse(settings, read_only=True)
        encryption.configure(con, settings)  # the context is a copy: written encrypted too
    except duckdb.Error as e:
        shutil.rmtree(target, ignore_errors=True)
        raise ExportError(f"cannot read the warehouse {settings.warehouse_path}: {e}") from e
    try:
        tables = {r[0] for r in con.execute(
            "select table_name from information_schema.tables").fetchall()}
        for name, query in QUERIES.items():
            path = literal(target / f"{name}.parquet")
            if name == "recommendations" and "customer_scores" not in tables:
                query = "select null::varchar as unified_id, null::varchar[] as " \
                        "next_best_products where false"
            con.execute(f"copy ({query}) to {path} (format parquet{encryption.copy_options(con)})")
            rows[name] = con.execute(f"select count(*) from read_parquet({path}"
                                     f"{encryption.parquet_read_options(settings)})").fetchone()[0]
    except duckdb.Error as e:
        shutil.rmtree(target, ignore_errors=True)
        raise ExportError(f"publishing the trigger context failed: {e}") from e
    finally:
        con.close()
    link = context_dir(settings)
    tmp_link = root / f".{CONTEXT_LINK}-{uuid.uuid4().hex[:8]}"
    os.symlink(target.name, tmp_link)
    previous = link.resolve() if link.is_symlink() else None
    os.replace(tmp_link, link)
    for old in root.glob("context-*"):
        # Keep the one just replaced: a runner tick may still be reading it.
        if old != target and old != previous and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    seconds = round(time.perf_counter() - start, 3)
    log_event(logger, "trigger_context_published", ds=str(ds), seconds=seconds, **rows)
    return StepReport(step="publish_trigger_context", ds=str(ds), rows_in=rows["people"],
                      rows_out=sum(rows.values()), seconds=seconds,
                      details={"path": str(target), **rows})

"""`campaign_responses.parquet` and `campaign_purchases.parquet`: what the portal's A/B page
reads (portal/abtest.py). The responses are the `campaign_responses` mart (per campaign,
variant, person and day: opened, clicked, converted); the purchases are the purchase events
of `customer_events` since the first campaign response, for the holdout baseline. Both carry
`unified_id`s and times only, no contact data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from personalization.export import files

RESPONSES = "campaign_responses.parquet"
PURCHASES = "campaign_purchases.parquet"


def write_campaign_results(con: duckdb.DuckDBPyConnection, tmp: Path,
                           wh: str) -> dict[str, Any] | None:
    """Write both files into the export folder `tmp`; None when the warehouse lacks the mart
    (a warehouse built before it existed)."""
    if not (files.has_warehouse_table(con, "campaign_responses")
            and files.has_warehouse_table(con, "customer_events")):
        return None
    responses = f"""
        SELECT campaign_id, variant, unified_id, activity_on, first_event_at, last_event_at,
               has_opened, has_clicked, has_converted
        FROM {wh}.campaign_responses
        ORDER BY campaign_id, variant, unified_id, activity_on"""
    purchases = f"""
        SELECT unified_id, occurred_at AS purchased_at
        FROM {wh}.customer_events
        WHERE event_type = 'purchase' AND unified_id IS NOT NULL
          AND occurred_at >= (SELECT min(first_event_at) FROM {wh}.campaign_responses)
        ORDER BY unified_id, purchased_at"""
    out: dict[str, Any] = {}
    for name, query in (("responses", responses), ("purchases", purchases)):
        path = tmp / (RESPONSES if name == "responses" else PURCHASES)
        rows = files.write_parquet(con, query, path)
        out[name] = {"rows": rows, "file": files.file_entry(path, tmp)}
    return out

"""Reference implementations of the core transforms, on the same lake Parquet:
hand-written DuckDB SQL (no dbt) and plain single-threaded pandas.

Both compute exactly the same things so their outputs can be compared before timing:
- dedup: distinct persons by normalised email over CRM contacts + shop customers (latest version);
- rfm: recency/frequency/monetary per normalised order email (latest order version, placed only);
- segments: recent_browsers, big_spenders, cart_abandoners (as in docs/segments.md, keyed by
  the source's customer id / cookie rather than the unified id).
Each returns a dict of checksums: row counts and sums.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

GMAIL = ("gmail.com", "googlemail.com")


def _glob(lake: Path, table: str) -> str:
    return str(lake / "raw" / table / "*" / "part-0.parquet")


# ----------------------------------------------------------------------------- DuckDB
_NORMALIZE_SQL = """
    CASE WHEN split_part(x, '@', 2) IN ('gmail.com', 'googlemail.com')
         THEN replace(split_part(split_part(x, '@', 1), '+', 1), '.', '') || '@gmail.com'
         ELSE split_part(split_part(x, '@', 1), '+', 1) || '@' || split_part(x, '@', 2) END
"""


def duckdb_reference(lake: Path, ds: date, threads: int = 2) -> dict:
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    end = datetime.combine(ds + timedelta(days=1), time())
    con.execute(f"""
        CREATE MACRO norm_email(x) AS ({_NORMALIZE_SQL});
        CREATE VIEW people AS
        SELECT norm_email(lower(trim(email))) AS email_normalized FROM (
            SELECT email, row_number() OVER (PARTITION BY contact_id ORDER BY updated_at DESC, ds DESC) AS rn
            FROM read_parquet('{_glob(lake, "crm/contacts")}', hive_partitioning = true)) WHERE rn = 1 AND email IS NOT NULL
        UNION ALL
        SELECT norm_email(lower(trim(email))) FROM (
            SELECT email, row_number() OVER (PARTITION BY customer_id ORDER BY updated_at DESC, ds DESC) AS rn
            FROM read_parquet('{_glob(lake, "shop/customers")}', hive_partitioning = true)) WHERE rn = 1 AND email IS NOT NULL;
        CREATE TABLE orders AS
        SELECT norm_email(lower(trim(email))) AS email_normalized, ordered_at, total_amount FROM (
            SELECT *, row_number() OVER (PARTITION BY order_id ORDER BY ds DESC, _line_number DESC) AS rn
            FROM read_parquet('{_glob(lake, "shop/orders")}', hive_partitioning = true))
        WHERE rn = 1 AND status = 'placed' AND email IS NOT NULL;
        CREATE TABLE events AS
        SELECT DISTINCT ON (event_id) coalesce(customer_id, anonymous_id) AS person, event_type, occurred_at
        FROM read_parquet('{_glob(lake, "pixel/events")}', hive_partitioning = true)
        WHERE occurred_at < TIMESTAMP '{end}';
    """)
    dedup = con.execute("SELECT count(DISTINCT email_normalized), count(*) FROM people").fetchone()
    rfm = con.execute(f"""
        SELECT count(*), sum(recency_days), sum(frequency), round(sum(monetary), 2) FROM (
            SELECT email_normalized, DATE '{ds}' - max(ordered_at)::DATE AS recency_days,
                   count(*) AS frequency, sum(total_amount) AS monetary
            FROM orders GROUP BY 1)
    """).fetchone()
    browsers = con.execute(f"""
        SELECT count(*) FROM (
            SELECT person FROM events WHERE occurred_at >= TIMESTAMP '{end}' - INTERVAL 48 HOUR
            GROUP BY person
            HAVING count(*) FILTER (WHERE event_type = 'product_view') >= 3
               AND count(*) FILTER (WHERE event_type = 'purchase') = 0)
    """).fetchone()[0]
    spenders = con.execute(f"""
        SELECT count(*) FROM (SELECT email_normalized FROM orders
            WHERE ordered_at >= TIMESTAMP '{end}' - INTERVAL 365 DAY GROUP BY 1 HAVING sum(total_amount) > 500)
    """).fetchone()[0]
    abandoners = con.execute(f"""
        WITH carts AS (SELECT person, max(occurred_at) AS last_cart FROM events
                       WHERE event_type = 'add_to_cart' AND occurred_at >= TIMESTAMP '{end}' - INTERVAL 3 DAY
                       GROUP BY person)
        SELECT count(*) FROM carts c WHERE NOT EXISTS (
            SELECT 1 FROM events e WHERE e.person = c.person
              AND e.event_type IN ('checkout_start', 'purchase') AND e.occurred_at > c.last_cart)
    """).fetchone()[0]
    con.close()
    return {"dedup_persons": dedup[0], "dedup_records": dedup[1], "rfm_rows": rfm[0],
            "rfm_recency_sum": int(rfm[1] or 0), "rfm_frequency_sum": int(rfm[2] or 0),
            "rfm_monetary_sum": float(rfm[3] or 0), "recent_browsers": browsers,
            "big_spenders": spenders, "cart_abandoners": abandoners}


# ----------------------------------------------------------------------------- pandas
def _read(lake: Path, table: str, columns: list[str]) -> pd.DataFrame:
    parts = sorted((lake / "raw" / table).glob("ds=*/part-0.parquet"))
    frames = []
    for p in parts:
        f = pd.read_parquet(p, columns=columns)
        f["ds"] = p.parent.name.removeprefix("ds=")
        frames.append(f)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns + ["ds"])


def _normalize(emails: pd.Series) -> pd.Series:
    e = emails.str.strip().str.lower()
    local, domain = e.str.split("@", n=1).str[0], e.str.split("@", n=1).str[1]
    local = local.str.split("+", n=1).str[0]
    gmail = domain.isin(GMAIL)
    local = local.where(~gmail, local.str.replace(".", "", regex=False))
    domain = domain.where(~gmail, "gmail.com")
    return local + "@" + domain


def _latest(df: pd.DataFrame, key: str, order: list[str]) -> pd.DataFrame:
    return df.sort_values(order).drop_duplicates(key, keep="last")


def pandas_reference(lake: Path, ds: date) -> dict:
    end = pd.Timestamp(datetime.combine(ds + timedelta(days=1), time()))
    crm = _latest(_read(lake, "crm/contacts", ["contact_id", "email", "updated_at"]),
                  "contact_id", ["updated_at", "ds"])
    shop = _latest(_read(lake, "shop/customers", ["customer_id", "email", "updated_at"]),
                   "customer_id", ["updated_at", "ds"])
    emails = pd.concat([crm["email"], shop["email"]]).dropna()
    people = _normalize(emails)
    orders = _read(lake, "shop/orders", ["order_id", "email", "ordered_at", "status",
                                         "total_amount", "_line_number"])
    orders = _latest(orders, "order_id", ["ds", "_line_number"])
    orders = orders[(orders["status"] == "placed") & orders["email"].notna()].copy()
    orders["email_normalized"] = _normalize(orders["email"])
    g = orders.groupby("email_normalized")
    rfm = pd.DataFrame({
        "recency_days": (pd.Timestamp(ds) - g["ordered_at"].max().dt.floor("D")).dt.days,
        "frequency": g.size(), "monetary": g["total_amount"].sum()})
    events = _read(lake, "pixel/events", ["event_id", "customer_id", "anonymous_id",
                                          "event_type", "occurred_at"])
    events = events.drop_duplicates("event_id")
    events = events[events["occurred_at"] < end]
    events["person"] = events["customer_id"].fillna(events["anonymous_id"])
    recent = events[events["occurred_at"] >= end - pd.Timedelta(hours=48)]
    counts = pd.crosstab(recent["person"], recent["event_type"])
    views = counts.get("product_view", pd.Series(0, index=counts.index))
    buys = counts.get("purchase", pd.Series(0, index=counts.index))
    browsers = int(((views >= 3) & (buys == 0)).sum())
    last_year = orders[orders["ordered_at"] >= end - pd.Timedelta(days=365)]
    spenders = int((last_year.groupby("email_normalized")["total_amount"].sum() > 500).sum())
    carts = events[(events["event_type"] == "add_to_cart")
                   & (events["occurred_at"] >= end - pd.Timedelta(days=3))]
    last_cart = carts.groupby("person")["occurred_at"].max().rename("last_cart")
    after = events[events["event_type"].isin(["checkout_start", "purchase"])].merge(
        last_cart, left_on="person", right_index=True)
    converted = set(after.loc[after["occurred_at"] > after["last_cart"], "person"])
    abandoners = int((~last_cart.index.isin(list(converted))).sum())
    return {"dedup_persons": int(people.nunique()), "dedup_records": int(len(people)),
            "rfm_rows": int(len(rfm)), "rfm_recency_sum": int(rfm["recency_days"].sum()),
            "rfm_frequency_sum": int(rfm["frequency"].sum()),
            "rfm_monetary_sum": float(np.round(rfm["monetary"].sum(), 2)),
            "recent_browsers": browsers, "big_spenders": spenders, "cart_abandoners": abandoners}


def same_results(a: dict, b: dict) -> list[str]:
    """Keys whose values differ (money compared to the cent)."""
    diffs = []
    for k in a:
        if isinstance(a[k], float) or isinstance(b.get(k), float):
            if not abs(float(a[k]) - float(b.get(k, np.nan))) <= 0.05:
                diffs.append(k)
        elif a[k] != b.get(k):
            diffs.append(k)
    return diffs

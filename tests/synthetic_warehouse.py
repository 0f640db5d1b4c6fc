"""A synthetic warehouse with planted, learnable structure, for the scoring tests.

Test-only data (moved out of the shipped package, issue 20).

Builds the public mart tables of docs/architecture.md directly (no dbt), with a vectorised
numpy population: each person has a start date, a hidden lifetime (after which they stop
buying and opening emails), a purchase rate, a price level, a product "bundle" they keep
buying from (planted co-purchase structure) and a preferred email hour. The real pipeline
never calls this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

BUNDLE_SIZE = 4
DEVICES = np.array(["mobile", "desktop", "tablet"])


@dataclass(frozen=True)
class SyntheticTruth:
    """What was planted, for tests to check against."""

    preferred_hour: pd.Series  # unified_id -> hour
    bundle_of_sku: dict[str, int]
    bundle_of_customer: pd.Series  # unified_id -> bundle


def _ts(base: datetime, seconds: np.ndarray) -> np.ndarray:
    return np.datetime64(base, "s") + seconds.astype("timedelta64[s]")


def build_synthetic_warehouse(path: Path, ds: date, customers: int = 3000, days: int = 730,
                              products: int = 200, categories: int = 10,
                              prospect_share: float = 0.1, seed: int = 0) -> SyntheticTruth:
    """Write a DuckDB file at `path` holding the marts as of the end of `ds`.

    Args:
        path: DuckDB file to create (replaced if present).
        ds: last day with data.
        customers: number of persons (a `prospect_share` of them never order).
        days: length of history.
        products: catalogue size (a multiple of `BUNDLE_SIZE`).
        categories: number of categories.
        prospect_share: share of persons who only browse and open emails.
        seed: random seed; the same arguments give the same file content.

    Returns:
        The planted truth (preferred hours, bundles).
    """
    rng = np.random.default_rng(seed)
    base = datetime.combine(ds - timedelta(days=days - 1), datetime.min.time())
    horizon_s = days * 86400
    n = customers
    uid = np.char.add("u", np.char.zfill(np.arange(n).astype(str), 7))

    # Catalogue: bundles of 4 SKUs share a category; popularity is Zipf-like.
    sku = np.char.add("SKU", np.char.zfill(np.arange(products).astype(str), 5))
    bundle_of_sku = np.arange(products) // BUNDLE_SIZE
    category = np.char.add("cat_", (bundle_of_sku % categories).astype(str))
    price = np.round(rng.lognormal(np.log(30), 0.5, products), 2)
    popularity = 1.0 / (1 + rng.permutation(products)) ** 0.8
    popularity /= popularity.sum()

    # People.
    start_s = rng.uniform(0, horizon_s - 30 * 86400, n)
    lifetime_s = rng.exponential(420 * 86400, n)
    end_s = np.minimum(start_s + lifetime_s, horizon_s)
    rate = rng.lognormal(np.log(1 / 45), 0.6, n) / 86400  # orders per second
    price_level = rng.lognormal(0, 0.5, n)
    bundle = rng.integers(0, products // BUNDLE_SIZE, n)
    hour = rng.choice(np.arange(6, 23), n)
    p_open = rng.beta(2, 4, n)
    device = DEVICES[rng.choice(3, n, p=[0.6, 0.3, 0.1])]
    is_buyer = rng.random(n) >= prospect_share

    # Orders: the first one at the start, then a Poisson process until the hidden end.
    n_orders = np.where(is_buyer, 1 + rng.poisson(rate * (end_s - start_s)), 0)
    o_owner = np.repeat(np.arange(n), n_orders)
    first = np.r_[0, np.cumsum(n_orders)[:-1]]
    o_time = start_s[o_owner] + rng.uniform(0, 1, o_owner.size) * (end_s - start_s)[o_owner]
    o_time[first[n_orders > 0]] = start_s[n_orders > 0]
    o_time = np.minimum(o_time, horizon_s - 1)
    order_id = np.char.add("o", np.char.zfill(np.arange(o_owner.size).astype(str), 9))
    status = rng.choice(np.array(["placed", "cancelled", "refunded"]), o_owner.size,
                        p=[0.95, 0.03, 0.02])

    # Items: mostly from the person's bundle, the rest by popularity.
    n_items = 1 + rng.poisson(0.6, o_owner.size)
    i_order = np.repeat(np.arange(o_owner.size), n_items)
    i_owner = o_owner[i_order]
    from_bundle = rng.random(i_order.size) < 0.75
    i_sku = np.where(from_bundle,
                     bundle[i_owner] * BUNDLE_SIZE + rng.integers(0, BUNDLE_SIZE, i_order.size),
                     rng.choice(products, i_order.size, p=popularity))
    quantity = 1 + rng.poisson(0.2, i_order.size)
    unit_price = np.round(price[i_sku] * price_level[i_owner], 2)
    line_amount = unit_price * quantity
    line_number = np.arange(i_order.size) - np.r_[0, np.cumsum(n_items)[:-1]][i_order] + 1
    total = np.bincount(i_order, weights=line_amount, minlength=o_owner.size)

    # Events: views before each order item, browsing while active, carts, emails.
    v_item = np.repeat(np.arange(i_order.size), 2)
    v_owner = i_owner[v_item]
    v_time = np.maximum(o_time[i_order[v_item]] - rng.uniform(60, 3 * 86400, v_item.size), 0)
    v_sku = i_sku[v_item]
    active_end = np.where(is_buyer, end_s, np.minimum(start_s + 120 * 86400, horizon_s))
    n_browse = rng.poisson(rate * 2 * (active_end - start_s) + 1)
    b_owner = np.repeat(np.arange(n), n_browse)
    b_time = start_s[b_owner] + rng.uniform(0, 1, b_owner.size) * (active_end - start_s)[b_owner]
    b_sku = np.where(rng.random(b_owner.size) < 0.6,
                     bundle[b_owner] * BUNDLE_SIZE + rng.integers(0, BUNDLE_SIZE, b_owner.size),
                     rng.choice(products, b_owner.size, p=popularity))
    c_owner, c_sku = i_owner, i_sku
    c_time = np.maximum(o_time[i_order] - rng.uniform(30, 3600, i_order.size), 0)

    # Weekly emails from the start on: opened at the preferred hour while active, rarely after.
    weeks_alive = (active_end - start_s) / (7 * 86400)
    weeks_after = (horizon_s - active_end) / (7 * 86400)
    n_alive_opens = rng.binomial(np.floor(weeks_alive).astype(int), p_open)
    n_open = n_alive_opens + rng.binomial(np.floor(weeks_after).astype(int), 0.01)
    e_owner = np.repeat(np.arange(n), n_open)
    rank_in_owner = np.arange(e_owner.size) - np.r_[0, np.cumsum(n_open)[:-1]][e_owner]
    e_alive = rank_in_owner < n_alive_opens[e_owner]
    e_from = np.where(e_alive, start_s[e_owner], active_end[e_owner])
    e_to = np.where(e_alive, active_end[e_owner], horizon_s)
    e_day = np.floor((e_from + rng.uniform(0, 1, e_owner.size) * (e_to - e_from)) / 86400)
    e_hour = np.where(rng.random(e_owner.size) < 0.7, hour[e_owner], rng.integers(0, 24, e_owner.size))
    e_time = np.minimum(e_day * 86400 + e_hour * 3600 + rng.uniform(0, 3599, e_owner.size),
                        horizon_s - 1)
    is_click = rng.random(e_owner.size) < 0.3
    k_owner = e_owner[is_click]
    k_time = np.minimum(e_time[is_click] + rng.uniform(5, 300, k_owner.size), horizon_s - 1)

    ev_owner = np.concatenate([v_owner, b_owner, c_owner, e_owner, k_owner])
    ev_time = np.concatenate([v_time, b_time, c_time, e_time, k_time])
    ev_type = np.repeat(np.array(["product_view", "product_view", "add_to_cart", "email_open",
                                  "email_click"]),
                        [v_owner.size, b_owner.size, c_owner.size, e_owner.size, k_owner.size])
    ev_sku = np.concatenate([sku[v_sku], sku[b_sku], sku[c_sku],
                             np.full(e_owner.size + k_owner.size, None, dtype=object)])

    events = pd.DataFrame({
        "event_id": np.char.add("e", np.arange(ev_owner.size).astype(str)),
        "unified_id": uid[ev_owner],
        "occurred_at": _ts(base, ev_time),
        "event_type": ev_type,
        "sku": ev_sku,
        "device": device[ev_owner],
    })
    orders = pd.DataFrame({
        "order_id": order_id, "unified_id": uid[o_owner], "customer_id": uid[o_owner],
        "ordered_at": _ts(base, o_time), "status": status, "currency": "EUR",
        "total_amount": np.round(total, 2), "item_count": n_items,
        "is_guest_checkout": False,
    })
    items = pd.DataFrame({
        "order_id": order_id[i_order], "line_number": line_number.astype("int32"),
        "unified_id": uid[i_owner], "sku": sku[i_sku], "category": category[i_sku],
        "quantity": quantity.astype("int32"), "unit_price": unit_price,
        "line_amount": np.round(line_amount, 2), "ordered_at": _ts(base, o_time[i_order]),
        "status": status[i_order],
    })
    opted_in = rng.random(n) < 0.85
    people = pd.DataFrame({
        "unified_id": uid, "is_opted_in": opted_in,
        "opted_in_at": np.where(opted_in, _ts(base, start_s), np.datetime64("NaT")),
        "main_device": device, "first_seen_at": _ts(base, start_s),
    })
    catalogue = pd.DataFrame({"sku": sku, "name": np.char.add("Product ", sku),
                              "category": category, "price": price, "is_active": True})
    _write(path, ds, events, orders, items, people, catalogue)
    return SyntheticTruth(
        preferred_hour=pd.Series(hour, index=uid),
        bundle_of_sku=dict(zip(sku.tolist(), bundle_of_sku.tolist(), strict=True)),
        bundle_of_customer=pd.Series(bundle, index=uid),
    )


# The engagement mart from the events and placed orders (also used by tests that change the
# events of a built warehouse: `create or replace table customer_engagement_daily as ...`).
ENGAGEMENT_SQL = """
            with ev as (
                select unified_id, occurred_at::date as activity_on, event_type from customer_events
                union all
                select unified_id, ordered_at::date, 'purchase' from orders where status = 'placed'
            )
            select unified_id, activity_on,
                   count(*) filter (where event_type = 'page_view') as page_views,
                   count(*) filter (where event_type = 'product_view') as product_views,
                   count(*) filter (where event_type = 'add_to_cart') as add_to_carts,
                   count(*) filter (where event_type = 'checkout_start') as checkout_starts,
                   count(*) filter (where event_type = 'purchase') as purchases,
                   count(*) filter (where event_type = 'login') as logins,
                   count(*) filter (where event_type = 'search') as searches,
                   count(*) filter (where event_type = 'email_open') as email_opens,
                   count(*) filter (where event_type = 'email_click') as email_clicks
            from ev group by all
"""


def _write(path: Path, ds: date, events: pd.DataFrame, orders: pd.DataFrame,
           items: pd.DataFrame, people: pd.DataFrame, catalogue: pd.DataFrame) -> None:
    path = Path(path)
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        for name, frame in {"_events": events, "_orders": orders, "_items": items,
                            "_people": people, "_catalogue": catalogue}.items():
            con.register(name, frame)
        con.execute("""
            create table products as
            select sku, name, category, price::double as price, is_active from _catalogue;
            create table orders as
            select order_id, unified_id, customer_id, ordered_at::timestamp as ordered_at,
                   ordered_at::date as ordered_on, status, currency, total_amount::double as total_amount,
                   item_count::integer as item_count, is_guest_checkout
            from _orders;
            create table order_items as
            select order_id, line_number, unified_id, sku, category, quantity, unit_price,
                   line_amount, ordered_at::timestamp as ordered_at, status
            from _items;
            create table customer_events as
            select e.event_id, e.unified_id, e.occurred_at::timestamp as occurred_at, e.event_type,
                   e.sku, p.category, null::varchar as campaign_id, null::varchar as variant, e.device,
                   e.occurred_at::date as delivered_on
            from _events e left join _catalogue p using (sku);
        """)
        con.execute(f"create table customer_engagement_daily as {ENGAGEMENT_SQL}")
        con.execute("create table identity_merges (absorbed_unified_id varchar, "
                    "surviving_unified_id varchar, merged_on date)")
        con.execute("""
            create table customer_profiles as
            with stats as (
                select unified_id, min(ordered_at) as first_order_at, max(ordered_at) as last_order_at,
                       count(*) as order_count, sum(total_amount) as revenue
                from orders where status = 'placed' group by all
            )
            select p.unified_id, p.unified_id || '@example.com' as email,
                   sha256(p.unified_id || '@example.com') as email_sha256,
                   null::varchar as first_name, null::varchar as last_name, null::varchar as phone,
                   null::varchar as street, null::varchar as city, null::varchar as postcode,
                   'DE' as country, 'de' as language, null::date as birth_date,
                   null::varchar as gender, p.is_opted_in, p.opted_in_at::timestamp as opted_in_at,
                   false as is_unsubscribed, null::timestamp as unsubscribed_at,
                   false as is_erased, p.is_opted_in as is_contactable,
                   case when s.unified_id is null then 'prospect' else 'active' end as lifecycle_stage,
                   s.first_order_at, s.last_order_at, coalesce(s.order_count, 0) as order_count,
                   coalesce(s.revenue, 0) as revenue, null::timestamp as last_seen_at,
                   null::timestamp as last_email_open_at, null::timestamp as last_email_click_at,
                   null::varchar as favourite_category, p.main_device,
                   p.first_seen_at::timestamp as first_seen_at, $ds::date as as_of_date
            from _people p left join stats s using (unified_id)
        """, {"ds": ds})
        con.execute("""
            create table customer_rfm as
            select unified_id, $ds::date as as_of_date,
                   date_diff('day', max(ordered_at)::date, $ds::date) as recency_days,
                   count(*) as frequency, sum(total_amount) as monetary,
                   ntile(5) over (order by max(ordered_at)) as recency_score,
                   ntile(5) over (order by count(*)) as frequency_score,
                   ntile(5) over (order by sum(total_amount)) as monetary_score,
                   0 as rfm_score, 'unknown' as rfm_segment
            from orders where status = 'placed' group by unified_id
        """, {"ds": ds})
    finally:
        con.close()

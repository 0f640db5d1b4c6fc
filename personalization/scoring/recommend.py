"""Next best products: item-to-item co-occurrence with popularity fallbacks, in DuckDB SQL.

Each person's recent interactions (purchases weigh 3, product views 1) give item pairs;
pair strength is normalised by item popularity (cosine). A person's candidates are the
neighbours of their recent items, minus everything they already bought; when that leaves
fewer than `k`, the best sellers of their favourite category and then overall fill up.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pandas as pd

RECENT_ITEMS = 20  # per person, for pairs and candidates (bounds the pair explosion)
NEIGHBOURS = 10  # per item
LOOKBACK_DAYS = 365
POPULARITY_DAYS = 90
FALLBACK_DEPTH = 10  # popular items offered per fallback source, beyond k

# Staged as temp tables (`{target}_<stage>`): DuckDB inlines a CTE at every use, and the
# interactions feed three later stages. Candidate lists are built per person with list
# functions (neighbours' top k, then the favourite category's and the overall best sellers
# minus what the person bought) instead of ranking every (person, candidate) row: the same
# result as "all candidates, unbought, first source wins, first k by source and score", at a
# fraction of the rows.
_RECOMMEND_STAGES = (
"""
create or replace temp table {target}_interactions as
select unified_id, sku, max(weight) as weight, max(interacted_at) as last_at
from (
    select unified_id, sku, 3.0 as weight, ordered_at as interacted_at
    from order_items
    where status = 'placed' and unified_id is not null and sku is not null
      and ordered_at < $cutoff::timestamp
      and ordered_at >= $cutoff::timestamp - to_days($lookback)
    union all
    select unified_id, sku, 1.0 as weight, occurred_at as interacted_at
    from customer_events
    where event_type = 'product_view' and unified_id is not null and sku is not null
      and occurred_at < $cutoff::timestamp
      and occurred_at >= $cutoff::timestamp - to_days($lookback)
)
group by unified_id, sku
""",
"""
create or replace temp table {target}_recent as
select unified_id, sku, weight
from {target}_interactions
qualify row_number() over (partition by unified_id order by last_at desc, sku) <= $recent
""",
"""
create or replace temp table {target}_similar as
with
item_weight as (
    select sku, sum(weight) as weight from {target}_recent group by sku
),

pairs as (
    select a.sku as sku_a, b.sku as sku_b, sum(least(a.weight, b.weight)) as co
    from {target}_recent as a
    inner join {target}_recent as b on a.unified_id = b.unified_id and a.sku <> b.sku
    group by a.sku, b.sku
)

select p.sku_a, p.sku_b, p.co / sqrt(wa.weight * wb.weight) as similarity
from pairs as p
inner join item_weight as wa on p.sku_a = wa.sku
inner join item_weight as wb on p.sku_b = wb.sku
where p.co >= 2  -- one shared person is coincidence, not structure
qualify row_number() over (partition by p.sku_a order by similarity desc, p.sku_b)
    <= $neighbours
""",
"""
create or replace temp table {target}_purchases as
select distinct unified_id, sku
from order_items
where status = 'placed' and unified_id is not null and sku is not null
  and ordered_at < $cutoff::timestamp
""",
"""
create or replace temp table {target}_bought as
select unified_id, list(sku) as skus from {target}_purchases group by unified_id
""",
"""
create or replace temp table {target}_popular as
with
active_products as (
    select sku, category from products where coalesce(is_active, true)
),

popular as (
    select i.sku, p.category, count(*) as buyers
    from order_items as i
    inner join active_products as p on i.sku = p.sku
    where i.status = 'placed' and i.ordered_at < $cutoff::timestamp
      and i.ordered_at >= $cutoff::timestamp - to_days($popularity_days)
    group by i.sku, p.category
)

select
    sku,
    category,
    row_number() over (order by buyers desc, sku) as overall_rank,
    row_number() over (partition by category order by buyers desc, sku) as category_rank
from popular
""",
"""
create or replace temp table {target} as
with
people as (
    select unified_id from ({population})
),

active_products as (
    select sku, category from products where coalesce(is_active, true)
),

favourite_category as (
    select i.unified_id, p.category
    from {target}_interactions as i
    inner join active_products as p on i.sku = p.sku
    where i.unified_id in (select unified_id from people)
    group by i.unified_id, p.category
    qualify row_number() over (partition by i.unified_id
                               order by sum(i.weight) desc, p.category) = 1
),

neighbour_scores as (
    select r.unified_id, s.sku_b as sku, sum(r.weight * s.similarity) as score
    from {target}_recent as r
    inner join {target}_similar as s on r.sku = s.sku_a
    where r.unified_id in (select unified_id from people)
      and s.sku_b in (select sku from active_products)
    group by r.unified_id, s.sku_b
),

from_neighbours as (
    -- Only the first k can be chosen: neighbours rank before every fallback.
    select n.unified_id, list(n.sku order by n.score desc, n.sku)[1:$k] as skus
    from neighbour_scores as n
    anti join {target}_purchases as b on n.unified_id = b.unified_id and n.sku = b.sku
    group by n.unified_id
),

category_lists as (
    select category, list(sku order by category_rank) as skus
    from {target}_popular
    where category_rank <= $k + $depth
    group by category
),

overall_list as (
    select coalesce(list(sku order by overall_rank), []::varchar[]) as skus
    from {target}_popular
    where overall_rank <= $k + $depth
),

offered as (
    -- Each fallback skips what the person bought and what an earlier source already offers.
    select
        people.unified_id,
        coalesce(n.skus, []::varchar[]) as neighbours,
        list_filter(coalesce(c.skus, []::varchar[]), lambda x:
            not list_contains(coalesce(b.skus, []::varchar[]), x)
            and not list_contains(coalesce(n.skus, []::varchar[]), x)) as category,
        list_filter((select skus from overall_list), lambda x:
            not list_contains(coalesce(b.skus, []::varchar[]), x)
            and not list_contains(coalesce(n.skus, []::varchar[]), x)
            and not list_contains(coalesce(c.skus, []::varchar[]), x)) as overall
    from people
    left join from_neighbours as n on people.unified_id = n.unified_id
    left join favourite_category as f on people.unified_id = f.unified_id
    left join category_lists as c on f.category = c.category
    left join {target}_bought as b on people.unified_id = b.unified_id
),

final as (
    select
        unified_id,
        list_concat(neighbours, category, overall)[1:$k] as next_best_products,
        list_concat(list_transform(neighbours, lambda x: 1),
                    list_transform(category, lambda x: 2),
                    list_transform(overall, lambda x: 3))[1:$k] as sources
    from offered
    where len(neighbours) + len(category) + len(overall) > 0
)

select * from final
""",
)

_POPULARITY_BASELINE_SQL = """
with
purchases as (
    select distinct unified_id, sku from order_items
    where status = 'placed' and unified_id is not null and ordered_at < $cutoff::timestamp
),
popular as (
    select i.sku, count(*) as buyers
    from order_items as i inner join products as p on i.sku = p.sku
    where coalesce(p.is_active, true) and i.status = 'placed'
      and i.ordered_at < $cutoff::timestamp
      and i.ordered_at >= $cutoff::timestamp - to_days($popularity_days)
    group by i.sku
    qualify row_number() over (order by buyers desc, i.sku) <= $k + $depth
),
candidates as (
    select h.unified_id, p.sku, p.buyers
    from heldout as h cross join popular as p
    anti join purchases as b on h.unified_id = b.unified_id and p.sku = b.sku
)
select unified_id, list(sku order by buyers desc, sku)[1:$k] as popular_products
from candidates group by unified_id
"""

_HELDOUT_SQL = """
create or replace temp table heldout as
with
before as (
    select distinct unified_id, sku from order_items
    where status = 'placed' and unified_id is not null and ordered_at < $cutoff::timestamp
),
last_order as (
    select unified_id, order_id
    from orders
    where status = 'placed' and unified_id is not null
      and ordered_at >= $cutoff::timestamp and ordered_at < $end::timestamp
    qualify row_number() over (partition by unified_id order by ordered_at desc, order_id) = 1
),
new_items as (
    select l.unified_id, i.sku
    from last_order as l
    inner join order_items as i on l.order_id = i.order_id
    anti join before as b on l.unified_id = b.unified_id and i.sku = b.sku
)
select unified_id, list(distinct sku) as heldout_skus from new_items group by unified_id
"""


def _params(cutoff: date, k: int) -> dict:
    return {"cutoff": cutoff, "k": k, "recent": RECENT_ITEMS, "neighbours": NEIGHBOURS,
            "lookback": LOOKBACK_DAYS, "popularity_days": POPULARITY_DAYS,
            "depth": FALLBACK_DEPTH}


def build_recommendations(con: duckdb.DuckDBPyConnection, cutoff: date, k: int,
                          population_sql: str, target: str = "next_best_products") -> str:
    """Compute top-`k` unbought products for `population_sql` into temp table `target`.

    Args:
        con: warehouse connection (read-only is fine: the result is a temp table).
        cutoff: exclusive cut-off; only interactions before it are used.
        k: products per person.
        population_sql: a query returning the `unified_id`s to recommend for.
        target: temp table name to (re)create.

    Returns:
        The temp table name: `unified_id, next_best_products VARCHAR[], sources INTEGER[]`
        (source 1 = co-occurrence, 2 = favourite-category best sellers, 3 = overall).
    """
    params = _params(cutoff, k)
    for stage in _RECOMMEND_STAGES:
        sql = stage.format(target=target, population=population_sql)
        con.execute(sql, {name: value for name, value in params.items() if f"${name}" in sql})
    for stage in ("interactions", "recent", "similar", "purchases", "bought", "popular"):
        con.execute(f"drop table if exists {target}_{stage}")
    return target


def evaluate_recommendations(con: duckdb.DuckDBPyConnection, ds: date, k: int,
                             holdout_days: int = 30) -> dict:
    """Hit rate on each buyer's held-out last purchase vs a popularity baseline.

    Recommendations are computed as of `ds + 1 - holdout_days`; the held-out purchase is
    each person's last order in the following `holdout_days`, restricted to products they
    had not bought before (recommendations never repeat a purchase). A hit is any of the
    `k` recommended products among the held-out ones.
    """
    end = ds + timedelta(days=1)
    cutoff = end - timedelta(days=holdout_days)
    con.execute(_HELDOUT_SQL, {"cutoff": cutoff, "end": end})
    table = build_recommendations(con, cutoff, k, "select unified_id from heldout",
                                  target="reco_eval")
    popular = con.execute(_POPULARITY_BASELINE_SQL, {
        "cutoff": cutoff, "k": k, "popularity_days": POPULARITY_DAYS, "depth": FALLBACK_DEPTH,
    }).df()
    con.register("_popular_eval", popular)
    row = con.execute(f"""
        select
            count(*) as persons,
            -- A person without recommendations counts as a miss, not as missing.
            avg(coalesce(len(list_intersect(r.next_best_products, h.heldout_skus)) > 0,
                         false)::int) as hit_rate,
            avg(coalesce(len(list_intersect(p.popular_products, h.heldout_skus)) > 0,
                         false)::int) as popularity_hit_rate,
            avg(coalesce(list_contains(r.sources, 1), false)::int) as share_with_cooccurrence
        from heldout as h
        left join {table} as r on h.unified_id = r.unified_id
        left join _popular_eval as p on h.unified_id = p.unified_id
    """).fetchall()[0]
    con.unregister("_popular_eval")
    persons, hit, pop_hit, share = row
    return {
        "k": k, "holdout_days": holdout_days, "cutoff": cutoff.isoformat(),
        "evaluated_persons": int(persons),
        "hit_rate": round(float(hit or 0.0), 4),
        "popularity_hit_rate": round(float(pop_hit or 0.0), 4),
        "share_with_cooccurrence": round(float(share or 0.0), 4),
    }


def recommendations_frame(con: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame:
    """The recommendations temp table as a frame (for tests and small inspections)."""
    return con.execute(f"select * from {table} order by unified_id").df()

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

from personalization.scoring.features import SAMPLE_FILTER
from personalization.scoring.viewed import (
    VIEW_SUM,
    build_views,
    drop_kept,
    drop_views,
    keep_views,
)

RECENT_ITEMS = 20  # per person, for pairs and candidates (bounds the pair explosion)
NEIGHBOURS = 10  # per item
LOOKBACK_DAYS = 365
POPULARITY_DAYS = 90
FALLBACK_DEPTH = 10  # popular items offered per fallback source, beyond k

# Staged as temp tables (`{t}_<stage>`): DuckDB inlines a CTE at every use, and the
# interactions feed three later stages. Candidate lists are built per person with list
# functions (neighbours' top k, then the favourite category's and the overall best sellers
# minus what the person bought) instead of ranking every (person, candidate) row: the same
# result as "all candidates, unbought, first source wins, first k by source and score", at a
# fraction of the rows.
#
# A person's list is a function of three per-person inputs (the co-occurrence top k, the
# favourite category, the bought list: `{t}_computed`, kept night to night as the
# recommendation state) and two global ones (the item neighbours, rebuilt weekly, and the
# best sellers, refreshed every night). `{person_filter}` restricts the per-person stages to
# `{t}_people` (the persons whose inputs changed), or is empty (everyone).
# A person's views are one row per product already (viewed.py): the order lines, grouped
# alone, are joined to them (a probe per view) rather than grouped together with them.
_INTERACTIONS = """
create or replace temp table {t}_interactions as
with
bought as (
    select i.unified_id, k.sid, max(i.ordered_at) as last_at
    from order_items as i
    inner join {t}_skus as k on i.sku = k.sku
    where i.status = 'placed' and i.unified_id is not null
      and i.ordered_at < $cutoff::timestamp
      and i.ordered_at >= $cutoff::timestamp - to_days($lookback)
      {person_filter}
    group by i.unified_id, k.sid
)

-- purchases weigh 3, product views 1 (viewed.py: the latest per person and product inside
-- the lookback)
select
    coalesce(b.unified_id, v.unified_id) as unified_id,
    coalesce(b.sid, v.sid) as sid,
    case when b.sid is null then 1.0 else 3.0 end as weight,
    greatest(b.last_at, v.last_viewed_at) as last_at  -- nulls ignored
from bought as b
full join {t}_views as v on b.unified_id = v.unified_id and b.sid = v.sid
"""

# Each person's latest `$recent` items (latest first, then by sku: sku numbers follow the
# skus' order), their items sorted as one small list each (not a window sorting 12M rows by
# person), each item packed into one number whose order is that order: the time before
# 3000-01-01 in µs, then the sku number, then whether bought (a list of structs sorted 1.5x
# slower; `arg_min(.., n)` spilled 20 GB at 1M persons).
_RECENT = """
create or replace temp table {t}_recent as
select unified_id, ((item & 4294967295) >> 1)::integer as sid,
       case when item & 1 = 1 then 3.0 else 1.0 end as weight
from (
    select unified_id, unnest(list_sort(list(
        ((epoch_us(timestamp '3000-01-01') - epoch_us(last_at))::hugeint << 32)
        | (sid::hugeint << 1) | (weight = 3.0)::hugeint))[1:$recent]) as item
    from {t}_interactions
    group by unified_id
)
"""

_SIMILAR = """
create or replace temp table {t}_similar as
with
item_weight as (
    select sid, sum(weight) as weight from {t}_recent group by sid
),

pairs as (
    select a.sid as sid_a, b.sid as sid_b, sum(least(a.weight, b.weight)) as co
    from {t}_recent as a
    inner join {t}_recent as b on a.unified_id = b.unified_id and a.sid <> b.sid
    group by a.sid, b.sid
),

neighbours as (
    select p.sid_a, p.sid_b, p.co / sqrt(wa.weight * wb.weight) as similarity
    from pairs as p
    inner join item_weight as wa on p.sid_a = wa.sid
    inner join item_weight as wb on p.sid_b = wb.sid
    where p.co >= 2  -- one shared person is coincidence, not structure
    qualify row_number() over (partition by p.sid_a order by similarity desc, p.sid_b)
        <= $neighbours
)

-- kept from night to night as skus (the numbers change when new skus arrive)
select a.sku as sku_a, b.sku as sku_b, n.similarity
from neighbours as n
inner join {t}_skus as a on n.sid_a = a.sid
inner join {t}_skus as b on n.sid_b = b.sid
"""

_PURCHASES = """
create or replace temp table {t}_purchases as
select distinct i.unified_id, k.sid
from order_items as i
inner join {t}_skus as k on i.sku = k.sku
where i.status = 'placed' and i.unified_id is not null
  and i.ordered_at < $cutoff::timestamp
  {person_filter}
"""

_POPULAR = """
create or replace temp table {t}_popular as
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
"""

# Dense integer keys for the persons, as the skus have (sku_numbers.py): the neighbour
# scores join ≈ 20 recent items per person with 10 neighbours each and group the product by
# (person, product), several times cheaper on 4-byte integers than on strings.
_KEYS = """
create or replace temp table {t}_person_keys as
select unified_id, (row_number() over ())::integer as pid from {t}_people
"""

# The per-person inputs of `{t}_people`.
_COMPUTED = """
create or replace temp table {t}_computed as
with
active_products as (
    -- Categories numbered in their order (nulls last, as `order by category`).
    select p.sku, k.sid, p.category, (dense_rank() over (order by p.category))::integer as cid
    from products as p
    inner join {t}_skus as k on p.sku = k.sku
    where coalesce(p.is_active, true)
),

favourite_category as (
    -- The category of most interaction weight, then the first by name: the greatest
    -- (weight, -number) per person, without ranking every person's categories.
    select pid, arg_max(cid, {{'weight': weight, 'category': -cid}}) as cid
    from (
        select p.pid, a.cid, sum(i.weight) as weight
        from {t}_interactions as i
        inner join {t}_person_keys as p on i.unified_id = p.unified_id
        inner join active_products as a on i.sid = a.sid
        group by p.pid, a.cid
    )
    group by pid
),

categories as (
    select distinct cid, category from active_products
),

-- (person, sku) packed into one BIGINT: the group-by and the anti join hash one key.
recent_keys as (
    select (p.pid::bigint << 32) as person_key, r.sid, r.weight
    from {t}_recent as r
    inner join {t}_person_keys as p on r.unified_id = p.unified_id
),

similar_keys as (
    select a.sid as sid_a, b.sid as sid_b, s.similarity
    from {t}_similar as s
    inner join {t}_skus as a on s.sku_a = a.sku
    inner join {t}_skus as b on s.sku_b = b.sku
    where s.sku_b in (select sku from active_products)
),

purchase_keys as (
    select (p.pid::bigint << 32) + b.sid as key
    from {t}_purchases as b
    inner join {t}_person_keys as p on b.unified_id = p.unified_id
),

neighbour_scores as (
    select r.person_key + s.sid_b as key, sum(r.weight * s.similarity) as score
    from recent_keys as r
    inner join similar_keys as s on r.sid = s.sid_a
    group by r.person_key + s.sid_b
),

from_neighbours as (
    -- Only the first k can be chosen: neighbours rank before every fallback. The top k by
    -- score, then sku (the greatest (score, -sid)), kept as they come instead of sorting
    -- every candidate. `not exists`, not `anti join`: DuckDB underestimates the scores'
    -- rows (9.4M at 1M) and built the anti join's hash table on them, not on the 1.2M
    -- purchases (2.9 -> 2.4 s).
    select (key >> 32)::integer as pid, arg_max(sid, {{'score': score, 'sid': -sid}}, $k) as sids
    from (select key, score, (key & 4294967295)::integer as sid
          from neighbour_scores
          where not exists (select 1 from purchase_keys as b where b.key = neighbour_scores.key))
    group by key >> 32
),

skus as (
    select list(sku order by sid) as skus from {t}_skus
),

bought as (
    select p.pid, list(b.sid order by b.sid) as sids
    from {t}_purchases as b
    inner join {t}_person_keys as p on b.unified_id = p.unified_id
    group by p.pid
)

select
    people.unified_id,
    coalesce(list_select(skus.skus, n.sids), []::varchar[]) as neighbours,
    c.category as favourite_category,
    coalesce(list_select(skus.skus, b.sids), []::varchar[]) as bought
from {t}_person_keys as people
cross join skus
left join from_neighbours as n on people.pid = n.pid
left join favourite_category as f on people.pid = f.pid
left join categories as c on f.cid = c.cid
left join bought as b on people.pid = b.pid
"""

# Lists for everyone in `{t}_state` from their kept inputs and tonight's best sellers.
_FILL = """
create or replace temp table {target} as
with
category_lists as (
    select category, list(sku order by category_rank) as skus
    from {t}_popular
    where category_rank <= $k + $depth
    group by category
),

overall_list as (
    select coalesce(list(sku order by overall_rank), []::varchar[]) as skus
    from {t}_popular
    where overall_rank <= $k + $depth
),

with_category as (
    -- Each fallback skips what the person bought and what an earlier source already offers;
    -- it is only filtered when the earlier sources leave room in the first k.
    select
        s.unified_id,
        s.neighbours,
        s.bought,
        coalesce(c.skus, []::varchar[]) as category_skus,
        case when len(s.neighbours) >= $k then []::varchar[]
            else list_filter(coalesce(c.skus, []::varchar[]), lambda x:
                not list_contains(s.bought, x)
                and not list_contains(s.neighbours, x)) end as category
    from {t}_state as s
    left join category_lists as c on s.favourite_category = c.category
),

offered as (
    select
        unified_id,
        neighbours,
        category,
        case when len(neighbours) + len(category) >= $k then []::varchar[]
            else list_filter((select skus from overall_list), lambda x:
                not list_contains(bought, x)
                and not list_contains(neighbours, x)
                and not list_contains(category_skus, x)) end as overall
    from with_category
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
"""

# Per person, a hash of every row the recommendation inputs read: product views per day
# inside the lookback (from the engagement mart: the same events, one row per person-day)
# and order lines (status, and whether the line is still inside the lookback). New orders,
# events, late deliveries, identity merges and splits (rows move between persons), status
# changes and rows ageing out of the lookback all change it. `view_sum`: viewed.py.
_FINGERPRINT = f"""
create or replace temp table {{t}}_fingerprint as
with
views as (
    select
        unified_id,
        sum(hash('view', activity_on, product_views)::hugeint) filter (where in_lookback) as h,
        count(*) filter (where in_lookback) as n,
        {VIEW_SUM} as view_sum
    from (
        select *, activity_on >= ($cutoff::timestamp - to_days($lookback))::date as in_lookback
        from customer_engagement_daily
        where unified_id is not null and product_views > 0 and activity_on < $cutoff::date
    )
    group by unified_id
),

lines as (
    select
        unified_id,
        sum(hash('line', order_id, line_number, sku, status, ordered_at,
                 ordered_at >= $cutoff::timestamp - to_days($lookback))::hugeint) as h,
        count(*) as n
    from order_items
    where unified_id is not null and ordered_at < $cutoff::timestamp
    group by unified_id
)

select
    coalesce(v.unified_id, l.unified_id) as unified_id,
    hash(coalesce(v.h, 0) + coalesce(l.h, 0), coalesce(v.n, 0) + coalesce(l.n, 0))
        as fingerprint,
    coalesce(v.view_sum, 0) as view_sum
from views as v
full join lines as l on v.unified_id = l.unified_id
"""

# What of the catalogue the per-person inputs read (favourite category, active candidates).
CATALOGUE_SQL = "select sku, category, coalesce(is_active, true) as is_active from products"

# Persons whose inputs a catalogue change may alter though their rows did not change: those
# who interacted (inside the lookback) with a changed product (added, removed, re-categorised,
# (de)activated: their favourite category) or with a product one of whose kept neighbours
# became a candidate (active); and those whose kept top k holds a product that stopped being
# one. A superset (every person with such an item, recent or not), exact enough to be cheap.
_CATALOGUE_PEOPLE = """
create or replace temp table {t}_catalogue_people as
with
changed as (
    select
        coalesce(n.sku, o.sku) as sku,
        coalesce(n.is_active, false) and not coalesce(o.is_active, false) as is_new_candidate,
        coalesce(o.is_active, false) and not coalesce(n.is_active, false) as was_candidate
    from ({catalogue}) as n
    full join {t}_previous_catalogue as o on n.sku = o.sku
    where n.sku is null or o.sku is null or n.category is distinct from o.category
       or n.is_active is distinct from o.is_active
),

touched as (
    select sku from changed
    union
    select sku_a from {t}_similar
    where sku_b in (select sku from changed where is_new_candidate)
)

select unified_id
from {t}_previous_views  -- in the kept sku numbers, not yet translated
where list_has_any(sku_ids, (select list(sid) from ({kept_skus})
                             where sku in (select sku from touched)))
union
select unified_id
from order_items
where status = 'placed' and unified_id is not null and sku in (select sku from touched)
  and ordered_at < $cutoff::timestamp
  and ordered_at >= $cutoff::timestamp - to_days($lookback)
union
select unified_id
from {t}_previous
where list_has_any(neighbours, (select list(sku) from changed where was_candidate))
"""

_PERSON_FILTER = "and unified_id in (select unified_id from {t}_people)"
_STAGES = ("interactions", "recent", "similar", "purchases", "popular", "person_keys",
           "computed", "state", "people", "fingerprint", "previous")


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

_HELDOUT_SQL = f"""
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
      and {SAMPLE_FILTER}
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


def _run(con: duckdb.DuckDBPyConnection, template: str, params: dict, **names: str) -> None:
    sql = template.format(**names)
    con.execute(sql, {name: value for name, value in params.items() if f"${name}" in sql})


def _drop_stages(con: duckdb.DuckDBPyConnection, t: str) -> None:
    for stage in _STAGES:
        con.execute(f"drop table if exists {t}_{stage}")


def build_recommendations(con: duckdb.DuckDBPyConnection, cutoff: date, k: int,
                          population_sql: str, target: str = "next_best_products",
                          sample: int | None = None) -> str:
    """Compute top-`k` unbought products for `population_sql` into temp table `target`,
    with item neighbours from tonight's interactions (everything recomputed).

    Args:
        con: warehouse connection (read-only is fine: the result is a temp table).
        cutoff: exclusive cut-off; only interactions before it are used.
        k: products per person.
        population_sql: a query returning the `unified_id`s to recommend for.
        target: temp table name to (re)create.
        sample: learn item neighbours from this share (per 10,000, by a hash of
            `unified_id`, as training samples) of persons only; None: everyone.

    Returns:
        The temp table name: `unified_id, next_best_products VARCHAR[], sources INTEGER[]`
        (source 1 = co-occurrence, 2 = favourite-category best sellers, 3 = overall).
    """
    params, t = {**_params(cutoff, k), "sample": sample}, target
    sampled = f"and {SAMPLE_FILTER}" if sample is not None else ""
    con.execute(f"create or replace temp table {t}_people as "
                f"select distinct unified_id from ({population_sql}) where unified_id is not null")
    build_views(con, t, params, person_filter=sampled)
    for stage in (_INTERACTIONS, _RECENT, _SIMILAR, _PURCHASES, _POPULAR, _KEYS, _COMPUTED):
        _run(con, stage, params, t=t, person_filter=sampled)
    con.execute(f"create or replace temp table {t}_state as select * from {t}_computed")
    _run(con, _FILL, params, t=t, target=target)
    _drop_stages(con, t)
    drop_views(con, t)
    drop_kept(con, t)
    return target


def build_recommendations_kept(con: duckdb.DuckDBPyConnection, cutoff: date, k: int,
                               population_sql: str, previous: dict | None,
                               target: str = "next_best_products") -> tuple[str, dict]:
    """Nightly recommendations in proportion to change.

    With `previous` (the state a former night kept: `state_sql` reading its per-person
    inputs and fingerprints, `neighbours_sql` its item neighbours), only the persons of
    `population_sql` whose fingerprint differs from the kept one (or who are new) are
    recomputed, against the kept item neighbours; everyone else keeps their inputs, and
    every list is refilled from tonight's best sellers. Without it, everything is computed
    and the item neighbours are rebuilt. Either way the lists equal what a recomputation of
    every person against the same item neighbours gives.

    `previous` also holds `views_sql` (the kept product views), `since` (the night that
    kept them) and `delivered_until` (the latest delivery it saw; None: `since`): the
    recomputed persons' views are the kept ones plus those of the events it did not see
    (viewed.py).

    Leaves temp tables `target` (as `build_recommendations`), `{target}_state`
    (`unified_id, fingerprint, view_sum, neighbours, favourite_category, bought`: tonight's
    state to keep), the temp view `{target}_views_state` (`unified_id, skus, last_viewed_at`:
    tonight's views to keep; viewed.drop_kept drops it and what it reads once it is written)
    and `{target}_similar` (the item neighbours used). Returns the target and details
    (`mode`, `persons`, `recomputed`, `views_read_from_events_for`).
    """
    params, t = _params(cutoff, k), target
    _run(con, _FINGERPRINT, params, t=t)
    if previous is None:
        con.execute(f"create or replace temp table {t}_people as "
                    f"select distinct unified_id from ({population_sql}) where unified_id is not null")
        views = build_views(con, t, params)
        for stage in (_INTERACTIONS, _RECENT, _SIMILAR):
            _run(con, stage, params, t=t, person_filter="")
    else:
        con.execute(f"create or replace temp table {t}_previous as {previous['state_sql']}")
        con.execute(f"create or replace temp table {t}_similar as {previous['neighbours_sql']}")
        con.execute(f"create or replace temp table {t}_previous_views as {previous['views_sql']}")
        con.execute(f"create or replace temp table {t}_previous_catalogue as "
                    f"{previous['catalogue_sql']}")
        _run(con, _CATALOGUE_PEOPLE, params, t=t, catalogue=CATALOGUE_SQL,
             kept_skus=previous["skus_sql"])
        con.execute(f"""
            create or replace temp table {t}_people as
            select p.unified_id
            from (select distinct unified_id from ({population_sql})
                  where unified_id is not null) as p
            left join {t}_fingerprint as f on p.unified_id = f.unified_id
            left join {t}_previous as s on p.unified_id = s.unified_id
            where s.unified_id is null or s.fingerprint is distinct from f.fingerprint
               or p.unified_id in (select unified_id from {t}_catalogue_people)""")
        views = build_views(con, t, params, previous=previous)
        for stage in (_INTERACTIONS, _RECENT):
            _run(con, stage, params, t=t, person_filter=_PERSON_FILTER.format(t=t))
    for stage in (_PURCHASES, _POPULAR, _KEYS, _COMPUTED):
        _run(con, stage, params, t=t, person_filter=_PERSON_FILTER.format(t=t))
    recomputed = con.execute(f"select count(*) from {t}_people").fetchone()[0]
    keep = "" if previous is None else f"""
        union all
        select s.unified_id, s.fingerprint, s.view_sum, s.neighbours, s.favourite_category,
               s.bought
        from {t}_previous as s
        where s.unified_id in (select unified_id from ({population_sql}))
          and s.unified_id not in (select unified_id from {t}_people)"""
    con.execute(f"""
        create or replace temp table {t}_state as
        select c.unified_id, f.fingerprint, coalesce(f.view_sum, 0)::ubigint as view_sum,
               c.neighbours, c.favourite_category, c.bought
        from {t}_computed as c
        left join {t}_fingerprint as f on c.unified_id = f.unified_id
        {keep}""")
    keep_views(con, t, population_sql, incremental=previous is not None)
    _run(con, _FILL, params, t=t, target=target)
    persons = con.execute(f"select count(*) from {t}_state").fetchone()[0]
    for stage in ("interactions", "recent", "purchases", "popular", "person_keys",
                  "computed", "fingerprint", "previous", "previous_catalogue",
                  "catalogue_people"):
        con.execute(f"drop table if exists {t}_{stage}")
    drop_views(con, t)  # what the kept views read stays: drop_kept, after the write
    return target, {"mode": "full" if previous is None else "incremental",
                    "persons": int(persons), "recomputed": int(recomputed),
                    "views_read_from_events_for": views.get("moved", int(recomputed))}


def evaluate_recommendations(con: duckdb.DuckDBPyConnection, ds: date, k: int,
                             holdout_days: int = 30, sample: int | None = None) -> dict:
    """Hit rate on each buyer's held-out last purchase vs a popularity baseline.

    Recommendations are computed as of `ds + 1 - holdout_days`; the held-out purchase is
    each person's last order in the following `holdout_days`, restricted to products they
    had not bought before (recommendations never repeat a purchase). A hit is any of the
    `k` recommended products among the held-out ones. With `sample` (per 10,000 persons, the
    training sample), only those persons are held out and their interactions alone give the
    item neighbours: a recommender learnt on the sample (slightly pessimistic), at the
    sample's share of the cost.
    """
    end = ds + timedelta(days=1)
    cutoff = end - timedelta(days=holdout_days)
    con.execute(_HELDOUT_SQL, {"cutoff": cutoff, "end": end, "sample": sample})
    table = build_recommendations(con, cutoff, k, "select unified_id from heldout",
                                  target="reco_eval", sample=sample)
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

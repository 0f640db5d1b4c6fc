"""Product views for next best products, kept night to night instead of read from every event.

Recommendations read each person's latest view of each product inside the lookback. Reading
them from `customer_events` scans every event ever loaded (96M at 1M persons), even for the
few persons whose inputs changed. So a night keeps everyone's views (`unified_id, sku_ids,
last_viewed_at`: one row per person, parallel lists of sku numbers, sku_numbers.py, and view
times) beside its scores, and the next night adds only the product views of the events it
did not see (delivered after the latest delivery it saw, or seen but happening
after its cut-off: db.events_since_kept_sql; the newest rows of the events table, which
DuckDB finds by its min/max row-group statistics) and drops what left the lookback.

That is right only for persons whose events have just grown by those deliveries, or by the
events of persons merged into them since (`identity_merges`: their kept views join the
survivor's); identity splits and cookie re-assignments move events otherwise, and retention
removes them. So each person also keeps `view_sum`: over all their product views before the
cut-off, the sum (mod 2^64) of a hash of the view's day, read from
`customer_engagement_daily` (one row per person-day, not per event). When tonight's
`view_sum` is not the kept one (plus the merged persons') plus that of the new deliveries'
views, something else changed, and that person's views are read from every event
(`{t}_moved`; skipped when nobody moved).
"""

from __future__ import annotations

import duckdb

from personalization.scoring.db import events_since_kept_sql
from personalization.scoring.sku_numbers import number_skus, translate_kept

# Per person, as a column of the fingerprint stage (recommend._FINGERPRINT): an additive
# checksum of their product views by day, over all time (the lookback would make every
# person with a view a year ago "moved" on the night it ages out).
VIEW_SUM = "(sum(product_views::hugeint * hash(activity_on)) % 18446744073709551616)::ubigint"

# Product views of the deliveries since the kept night (with or without a sku: view_sum
# counts both, as the engagement mart does).
_DELIVERED = "create or replace temp table {t}_delivered as " + events_since_kept_sql(
    "unified_id, sku, occurred_at", "event_type = 'product_view' and unified_id is not null")

# Each recomputed person's kept sources: themselves and whoever was merged into them since
# the kept night.
_SOURCES = """
create or replace temp table {t}_sources as
select unified_id, unified_id as source_id from {t}_people
union
select surviving_unified_id, absorbed_unified_id
from identity_merges
where merged_on > $since::date
  and surviving_unified_id in (select unified_id from {t}_people)
"""

# Recomputed persons whose views changed by more than their sources' and the new deliveries.
_MOVED = """
create or replace temp table {t}_moved as
with
kept_sums as (
    select o.unified_id, sum(s.view_sum::hugeint) as view_sum
    from {t}_sources as o
    inner join {t}_previous as s on o.source_id = s.unified_id
    group by o.unified_id
),

delivered_sums as (
    select unified_id, sum(hash(occurred_at::date)::hugeint) as view_sum
    from {t}_delivered
    group by unified_id
)

select p.unified_id
from {t}_people as p
left join {t}_fingerprint as f on p.unified_id = f.unified_id
left join kept_sums as s on p.unified_id = s.unified_id
left join delivered_sums as d on p.unified_id = d.unified_id
where coalesce(f.view_sum, 0)::hugeint
    <> (coalesce(s.view_sum, 0) + coalesce(d.view_sum, 0)) % 18446744073709551616
"""

# Latest view per (person, product) inside the lookback, read from every event: everyone
# (`{person_filter}` empty), a sample, or the moved persons.
_FROM_EVENTS = """
select unified_id, sku, max(occurred_at) as last_viewed_at
from customer_events
where event_type = 'product_view' and unified_id is not null and sku is not null
  and occurred_at < $cutoff::timestamp
  and occurred_at >= $cutoff::timestamp - to_days($lookback)
  {person_filter}
group by unified_id, sku
"""

# The other recomputed persons' views as lists (one row per person, parallel lists, as
# kept): their own kept lists merged with what may add to them (the new deliveries' views
# and the kept views of the persons merged into them since, one row per product), keeping
# the later view of a product in both, then cut to the lookback. Merging lists per person
# leaves the kept lists whole (≈ 50 views each at 1M) instead of unnesting, joining and
# grouping them again. The added products go after the person's own, unsorted: nothing
# reads a list's order, and sorting 185k persons' lists cost 1.1 of the 3.6 CPU s at 1M.
# Products are sku numbers (sku_numbers.py), the kept ones already translated to tonight's.
_FROM_KEPT = """
with
added as (
    select unified_id, sid, max(last_viewed_at) as last_viewed_at
    from (
        select o.unified_id, unnest(v.sku_ids) as sid, unnest(v.last_viewed_at) as last_viewed_at
        from {t}_sources as o
        inner join {t}_previous_views as v on o.source_id = v.unified_id
        where o.source_id <> o.unified_id
        union all
        select d.unified_id, k.sid, d.occurred_at
        from {t}_delivered as d
        inner join {t}_skus as k on d.sku = k.sku
    )
    where unified_id in (select unified_id from {t}_people)
      and unified_id not in (select unified_id from {t}_moved)
    group by unified_id, sid
),

added_lists as (
    select unified_id, list(sid) as sku_ids, list(last_viewed_at) as last_viewed_at
    from added
    group by unified_id
),

own as (
    select unified_id, sku_ids, last_viewed_at
    from {t}_previous_views
    where unified_id in (select unified_id from {t}_people)
      and unified_id not in (select unified_id from {t}_moved)
),

merged as (
    select
        coalesce(o.unified_id, a.unified_id) as unified_id,
        list_concat(
            -- own views of products not added again
            list_filter(
                list_transform(coalesce(o.sku_ids, []), lambda x, i:
                    {{'sid': x, 'last_viewed_at': o.last_viewed_at[i]}}),
                lambda v: not list_contains(coalesce(a.sku_ids, []), v.sid)),
            -- added products, at the later of their two views (nulls ignored)
            list_transform(coalesce(a.sku_ids, []), lambda x, i:
                {{'sid': x, 'last_viewed_at': greatest(
                    a.last_viewed_at[i], o.last_viewed_at[list_position(o.sku_ids, x)])}})
        ) as views
    from own as o
    full join added_lists as a on o.unified_id = a.unified_id
)

select
    unified_id,
    list_transform(views, lambda v: v.sid) as sku_ids,
    list_transform(views, lambda v: v.last_viewed_at) as last_viewed_at
from (
    select unified_id, list_filter(views, lambda v:
        v.last_viewed_at >= $cutoff::timestamp - to_days($lookback)) as views
    from merged
)
where len(views) > 0
"""

# Rows `unified_id, sid, last_viewed_at` (a product once per person) as kept: one row per
# person, parallel lists, by sku number (sorted once as one list of pairs, then split:
# cheaper than two ordered aggregates sorting twice; deterministic files on a rebuild).
_AS_LISTS = """
select
    unified_id,
    list_transform(views, lambda v: v.sid) as sku_ids,
    list_transform(views, lambda v: v.last_viewed_at) as last_viewed_at
from (
    select unified_id, list_sort(list({{'sid': sid, 'last_viewed_at': last_viewed_at}})) as views
    from ({rows})
    group by unified_id
)
"""

# View rows with skus (as read from the events) as rows with sku numbers.
_NUMBERED = """
select v.unified_id, k.sid, v.last_viewed_at
from {rows} as v
inner join {t}_skus as k on v.sku = k.sku
"""

_MOVED_FILTER = "and unified_id in (select unified_id from {t}_moved)"


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> None:
    con.execute(sql, {name: value for name, value in params.items() if f"${name}" in sql})


def build_views(con: duckdb.DuckDBPyConnection, t: str, params: dict,
                person_filter: str = "", previous: dict | None = None) -> dict:
    """Create `{t}_skus` (sku_numbers.py) and `{t}_views` (`unified_id, sid,
    last_viewed_at`) for the persons to compute.

    Without `previous`: read from the events for everyone matching `person_filter`. With it
    (`since` the kept night's date, `skus_sql` its sku numbering), for `{t}_people` (needs
    `{t}_fingerprint`, `{t}_previous` and `{t}_previous_views`, the kept state, as recommend
    builds them; the kept views are translated to tonight's sku numbers), and the same as
    lists in `{t}_view_lists` (as kept). Returns counts (`moved`: persons whose views were
    read from every event).
    """
    if previous is None:
        _run(con, f"create or replace temp table {t}_views as "
                  + _FROM_EVENTS.format(person_filter=person_filter), params)
        number_skus(con, t, [f"select sku from {t}_views"])
        con.execute(f"create or replace temp table {t}_views as "
                    + _NUMBERED.format(rows=f"{t}_views", t=t))
        return {}
    params = {**params, "since": previous["since"],
              "delivered_until": previous.get("delivered_until") or previous["since"]}
    _run(con, _DELIVERED.format(t=t), params)
    _run(con, _SOURCES.format(t=t), params)
    _run(con, _MOVED.format(t=t), params)
    moved = con.execute(f"select count(*) from {t}_moved").fetchone()[0]
    view_skus = [f"select sku from {t}_delivered"]
    if moved:
        _run(con, f"create or replace temp table {t}_moved_views as " + _FROM_EVENTS.format(
            person_filter=_MOVED_FILTER.format(t=t)), params)
        view_skus.append(f"select sku from {t}_moved_views")
    if number_skus(con, t, view_skus, previous["skus_sql"]):
        translate_kept(con, t, f"{t}_previous_views", previous["skus_sql"])
    sql = _FROM_KEPT.format(t=t)
    if moved:
        sql += "union all\n" + _AS_LISTS.format(
            rows=_NUMBERED.format(rows=f"{t}_moved_views", t=t))
    _run(con, f"create or replace temp table {t}_view_lists as {sql}", params)
    con.execute(f"create or replace temp table {t}_views as select unified_id, "
                f"unnest(sku_ids) as sid, unnest(last_viewed_at) as last_viewed_at "
                f"from {t}_view_lists")
    return {"moved": int(moved)}


def keep_views(con: duckdb.DuckDBPyConnection, t: str, population_sql: str,
               incremental: bool) -> None:
    """Create the temp view `{t}_views_state`, tonight's views of everyone in
    `population_sql`: one row per person (`unified_id, sku_ids, last_viewed_at`, parallel
    lists; tonight's sku numbers). The recomputed persons' are `{t}_view_lists`
    (incremental) or `{t}_views` as lists, the others' are the kept rows as they were (their
    fingerprint did not change, so no view of theirs left the lookback). A view, not a table: it is read once, by the
    write of the kept state, which then drops it and the tables under it (`drop_kept`)."""
    computed = f"select * from {t}_view_lists" if incremental else \
        _AS_LISTS.format(rows=f"select * from {t}_views")
    kept = "" if not incremental else f"""
        union all
        select unified_id, sku_ids, last_viewed_at
        from {t}_previous_views
        where unified_id not in (select unified_id from {t}_people)"""
    con.execute(f"""
        create or replace temp view {t}_views_state as
        select unified_id, sku_ids, last_viewed_at
        from ({computed} {kept})
        where unified_id in (select unified_id from ({population_sql}))""")


# What `{t}_views_state` and the kept sku numbering read (`people`: recommend.py makes it).
_UNDER_VIEWS_STATE = ("views", "view_lists", "previous_views", "people", "skus")


def drop_views(con: duckdb.DuckDBPyConnection, t: str) -> None:
    """Drop the stages only the views' build reads; `drop_kept` drops the rest."""
    for stage in ("delivered", "sources", "moved", "moved_views"):
        con.execute(f"drop table if exists {t}_{stage}")


def drop_kept(con: duckdb.DuckDBPyConnection, t: str) -> None:
    """Drop `{t}_views_state` (if any) and the stages under it, once it is written."""
    con.execute(f"drop view if exists {t}_views_state")
    for stage in _UNDER_VIEWS_STATE:
        con.execute(f"drop table if exists {t}_{stage}")


def view_rows_sql(views: str, skus: str) -> str:
    """Kept views (`views`: `unified_id, sku_ids, last_viewed_at`) as rows `unified_id, sku,
    last_viewed_at`, through their numbering `skus` (`sku, sid`)."""
    return f"""
        select v.unified_id, k.sku, v.last_viewed_at
        from (select unified_id, unnest(sku_ids) as sid, unnest(last_viewed_at) as last_viewed_at
              from {views}) as v
        inner join {skus} as k on v.sid = k.sid"""

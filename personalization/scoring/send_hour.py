"""Best send hour from each person's email open and click hours, in DuckDB SQL.

Hour histograms are smoothed twice: across neighbouring hours (a circular 1-2-1 kernel,
since 09:55 and 10:05 mean the same thing) and towards the global histogram (a few
pseudo-events), then the mode is taken. People with fewer than `min_events` opens and
clicks get the global mode. Hours are UTC, like every timestamp in the warehouse. Only the
scored population (not erased persons) counts, for the global histogram too.

Nightly in proportion to change (as viewed.py for product views): a night keeps everyone's
histogram by day inside the lookback and, per person, `email_sum`, the sum (mod 2^64) of a
hash of the day of each open and click of all time, read from customer_engagement_daily. The
next night adds the opens and clicks of the deliveries since then and drops the days that
left the lookback; a person whose `email_sum` is not the kept one plus the new deliveries'
(identity merges and splits, retention) has their histogram read from every event.
"""

from __future__ import annotations

from datetime import date

import duckdb

from personalization.scoring.db import events_since_kept_sql

MIN_EVENTS = 5
PRIOR_WEIGHT = 2.0  # pseudo-events spread like the global histogram
LOOKBACK_DAYS = 365
DEFAULT_HOUR = 10  # when nobody has ever opened an email

_EMAIL = "event_type in ('email_open', 'email_click') and unified_id is not null"
_MODULUS = "18446744073709551616"  # 2^64: the sums are kept as UBIGINT

# Per person of the population with opens or clicks before the cut-off.
_SUMS = f"""
create or replace temp table {{t}}_sums as
select
    unified_id,
    (sum((email_opens + email_clicks)::hugeint * hash(activity_on)) % {_MODULUS})::ubigint
        as email_sum
from customer_engagement_daily
where activity_on < $cutoff::date and email_opens + email_clicks > 0
  and unified_id in (select unified_id from ({{population}}))
group by unified_id
"""

# Opens and clicks per person, day and hour inside the lookback, from every event, for
# `{people}` (by day, so that a later night drops the days that left the lookback itself).
_FROM_EVENTS = f"""
select
    unified_id, occurred_at::date as activity_on, hour(occurred_at) as send_hour,
    count(*)::integer as events
from customer_events
where {_EMAIL}
  and occurred_at < $cutoff::timestamp
  and occurred_at >= $cutoff::timestamp - to_days($lookback)
  and unified_id in (select unified_id from {{people}})
group by all
"""

_DELIVERED = "create or replace temp table {t}_delivered as " + events_since_kept_sql(
    "unified_id, occurred_at", _EMAIL)

_MOVED = f"""
create or replace temp table {{t}}_moved as
with
delivered_sums as (
    select unified_id, sum(hash(occurred_at::date)::hugeint) as email_sum
    from {{t}}_delivered
    group by unified_id
)

select s.unified_id
from {{t}}_sums as s
left join {{t}}_previous_sums as p on s.unified_id = p.unified_id
left join delivered_sums as d on s.unified_id = d.unified_id
where s.email_sum::hugeint
    <> (coalesce(p.email_sum, 0)::hugeint + coalesce(d.email_sum, 0)) % {_MODULUS}
"""

# The others: kept histograms of the days still inside the lookback, plus the new
# deliveries'.
_FROM_KEPT = """
select unified_id, activity_on, send_hour, sum(events)::integer as events
from (
    select unified_id, activity_on, send_hour, events from {t}_previous_hist
    union all
    select unified_id, occurred_at::date, hour(occurred_at), 1 from {t}_delivered
)
where unified_id in (select unified_id from {t}_sums)
  and unified_id not in (select unified_id from {t}_moved)
  and activity_on >= ($cutoff::timestamp - to_days($lookback))::date
group by all
"""

_SEND_HOUR_SQL = """
create or replace temp table {target} as
with
per_hour as (
    select unified_id, send_hour, sum(events) as events from {t}_hist group by all
),

global_hours as (
    select h.send_hour, coalesce(sum(p.events), 0) + 1 as events
    from range(24) as h(send_hour)
    left join per_hour as p on h.send_hour = p.send_hour
    group by h.send_hour
),

global_share as (
    select send_hour, events / sum(events) over () as share from global_hours
),

global_mode as (
    select case when (select count(*) from per_hour) = 0 then $default_hour
                else arg_max(send_hour, events) end as send_hour
    from global_hours
),

totals as (
    select unified_id, sum(events) as events from per_hour group by unified_id
),

eligible as (
    select unified_id from totals where events >= $min_events
),

smoothed as (
    -- Each observed hour feeds itself (weight 2) and both neighbours (weight 1).
    select p.unified_id, (p.send_hour + s.shift + 24) % 24 as send_hour,
           sum(p.events * s.weight) as events
    from per_hour as p
    inner join (values (-1, 1.0), (0, 2.0), (1, 1.0)) as s(shift, weight) on true
    where p.unified_id in (select unified_id from eligible)
    group by all
),

scored as (
    select e.unified_id, g.send_hour,
           coalesce(s.events, 0) / 4.0 + $prior * g.share as score
    from eligible as e
    cross join global_share as g
    left join smoothed as s on e.unified_id = s.unified_id and g.send_hour = s.send_hour
),

personal as (
    select unified_id, send_hour
    from scored
    qualify row_number() over (partition by unified_id order by score desc, send_hour) = 1
),

final as (
    select people.unified_id,
           coalesce(personal.send_hour, (select send_hour from global_mode))::integer
               as best_send_hour,
           personal.send_hour is not null as is_personal
    from ({population}) as people
    left join personal on people.unified_id = personal.unified_id
)

select * from final
"""


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> None:
    con.execute(sql, {name: value for name, value in params.items() if f"${name}" in sql})


def build_send_hours(con: duckdb.DuckDBPyConnection, cutoff: date, population_sql: str,
                     target: str = "best_send_hours", min_events: int = MIN_EVENTS,
                     previous: dict | None = None) -> tuple[str, dict]:
    """Best send hour (0-23, UTC) per person into temp table `target`.

    Args:
        con: warehouse connection.
        cutoff: exclusive cut-off; only opens and clicks before it count.
        population_sql: query returning the `unified_id`s to cover.
        target: temp table name.
        min_events: below this many opens/clicks, the global mode is used.
        previous: what an earlier night kept (`hist_sql`, `sums_sql` reading it, `since` its
            date, `delivered_until` the latest delivery it saw or None): tonight's
            histograms are computed from it (module docstring); None reads every event.
            Either way the same histograms.

    Returns:
        The temp table name (`unified_id, best_send_hour, is_personal`) and details
        (`mode`, `read_from_events_for`). Also leaves `{target}_hist` (`unified_id,
        activity_on, send_hour, events`) and `{target}_sums` (`unified_id, email_sum`):
        tonight's state.
    """
    t = target
    params = {"cutoff": cutoff, "lookback": LOOKBACK_DAYS, "min_events": min_events,
              "prior": PRIOR_WEIGHT, "default_hour": DEFAULT_HOUR}
    _run(con, _SUMS.format(t=t, population=population_sql), params)
    if previous is None:
        _run(con, f"create or replace temp table {t}_hist as "
                  + _FROM_EVENTS.format(people=f"({population_sql})"), params)
        details = {"mode": "full"}
    else:
        params["since"] = previous["since"]
        params["delivered_until"] = previous.get("delivered_until") or previous["since"]
        con.execute(f"create or replace temp table {t}_previous_hist as {previous['hist_sql']}")
        con.execute(f"create or replace temp table {t}_previous_sums as {previous['sums_sql']}")
        _run(con, _DELIVERED.format(t=t), params)
        _run(con, _MOVED.format(t=t), params)
        moved = con.execute(f"select count(*) from {t}_moved").fetchone()[0]
        sql = _FROM_KEPT.format(t=t)
        if moved:
            sql += "union all\n" + _FROM_EVENTS.format(people=f"{t}_moved")
        _run(con, f"create or replace temp table {t}_hist as {sql}", params)
        details = {"mode": "incremental", "read_from_events_for": int(moved)}
        for stage in ("previous_hist", "previous_sums", "delivered", "moved"):
            con.execute(f"drop table if exists {t}_{stage}")
    _run(con, _SEND_HOUR_SQL.format(target=target, t=t, population=population_sql), params)
    return target, details

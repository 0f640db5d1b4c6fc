"""Best send hour from each person's email open and click hours, in DuckDB SQL.

Hour histograms are smoothed twice: across neighbouring hours (a circular 1-2-1 kernel,
since 09:55 and 10:05 mean the same thing) and towards the global histogram (a few
pseudo-events), then the mode is taken. People with fewer than `min_events` opens and
clicks get the global mode. Hours are UTC, like every timestamp in the warehouse.
"""

from __future__ import annotations

from datetime import date

import duckdb

MIN_EVENTS = 5
PRIOR_WEIGHT = 2.0  # pseudo-events spread like the global histogram
LOOKBACK_DAYS = 365
DEFAULT_HOUR = 10  # when nobody has ever opened an email

_SEND_HOUR_SQL = """
create or replace temp table {target} as
with
opens as (
    select unified_id, hour(occurred_at) as send_hour
    from customer_events
    where event_type in ('email_open', 'email_click') and unified_id is not null
      and occurred_at < $cutoff::timestamp
      and occurred_at >= $cutoff::timestamp - to_days($lookback)
),

per_hour as (
    select unified_id, send_hour, count(*) as events from opens group by unified_id, send_hour
),

global_hours as (
    select h.send_hour, coalesce(count(o.send_hour), 0) + 1 as events
    from range(24) as h(send_hour)
    left join opens as o on h.send_hour = o.send_hour
    group by h.send_hour
),

global_share as (
    select send_hour, events / sum(events) over () as share from global_hours
),

global_mode as (
    select case when (select count(*) from opens) = 0 then $default_hour
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


def build_send_hours(con: duckdb.DuckDBPyConnection, cutoff: date, population_sql: str,
                     target: str = "best_send_hours", min_events: int = MIN_EVENTS) -> str:
    """Best send hour (0-23, UTC) per person into temp table `target`.

    Args:
        con: warehouse connection.
        cutoff: exclusive cut-off; only opens and clicks before it count.
        population_sql: query returning the `unified_id`s to cover.
        target: temp table name.
        min_events: below this many opens/clicks, the global mode is used.

    Returns:
        The temp table name: `unified_id, best_send_hour, is_personal`.
    """
    con.execute(_SEND_HOUR_SQL.format(target=target, population=population_sql),
                {"cutoff": cutoff, "lookback": LOOKBACK_DAYS, "min_events": min_events,
                 "prior": PRIOR_WEIGHT, "default_hour": DEFAULT_HOUR})
    return target

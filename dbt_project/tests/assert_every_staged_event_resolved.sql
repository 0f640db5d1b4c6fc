-- Every staged event is in customer_events (int_events__resolved) and nothing else is: the
-- two tables hold as many events. Comparing them id by id would join ~100M ids nightly at
-- 1M people (the incremental-equals-full-refresh tests do that on small data); the counts
-- catch an event one table kept and the other lost, as an erasure that removed events from
-- the staged events only did (docs/privacy.md, "Erasure"). An invariant of our own models
-- (a row returned is a bug in them, never the data's fault), so it fails the build.
with staged as (
    select count(*) as n_events from {{ ref('stg_pixel__events') }}
    where delivered_on <= date '{{ var("ds") }}'
),

resolved as (
    select count(*) as n_events from {{ ref('int_events__resolved') }}
),

final as (
    select
        staged.n_events as staged_events,
        resolved.n_events as resolved_events
    from staged
    cross join resolved
    where staged.n_events <> resolved.n_events
)

select * from final

-- One row per person and category: how many of their product views were of that category.
-- Incremental (exception to the intermediate-as-tables rule), by adding like
-- int_customers__device_activity: a night adds the new deliveries' views to the person's
-- rows, and recomputes from all their events only the persons whose old events changed
-- person or category, or whose rows already count a reloaded delivery
-- (macros/incremental_events.sql).
{{ per_person_event_config(key='delta_by_category') }}

with events as (
    {{ delta_person_events() }}
),

partials as (
    select
        unified_id,
        category,
        count(*) as views,
        max(delivered_on) as last_delivered_on
    from events
    where event_type = 'product_view' and category is not null
    group by unified_id, category
    {{ delta_previous_rows(['unified_id', 'category', 'views', 'last_delivered_on']) }}
),

final as (
    select
        unified_id,
        category,
        cast(sum(views) as bigint) as views,
        max(last_delivered_on) as last_delivered_on
    from partials
    group by unified_id, category
)

select * from final

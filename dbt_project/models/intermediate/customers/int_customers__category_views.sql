-- One row per person and category: how many of their product views were of that category.
-- Incremental (exception to the intermediate-as-tables rule): a night recomputes only the
-- persons whose events changed (macros/incremental_events.sql).
{{ per_person_event_config() }}

with events as (
    {{ touched_person_events() }}
),

final as (
    select
        unified_id,
        category,
        count(*) as views,
        max(delivered_on) as last_delivered_on
    from events
    where event_type = 'product_view' and category is not null
    group by unified_id, category
)

select * from final

-- Incremental (exception to the marts-as-tables rule): a night recomputes only the (person,
-- day) rows whose events changed: the days of newly delivered events, every day of persons
-- whose old events moved or expired (macros/incremental_events.sql); `--full-refresh`
-- gives the same table.
{{ per_person_event_config(key="day") }}

with events as (
    {{ touched_person_events() }}
),

final as (
    select
        unified_id,
        cast(occurred_at as date) as activity_on,
        cast(count(*) filter (where event_type = 'page_view') as integer) as page_views,
        cast(count(*) filter (where event_type = 'product_view') as integer) as product_views,
        cast(count(*) filter (where event_type = 'add_to_cart') as integer) as add_to_carts,
        cast(count(*) filter (where event_type = 'checkout_start') as integer) as checkout_starts,
        cast(count(*) filter (where event_type = 'purchase') as integer) as purchases,
        cast(count(*) filter (where event_type = 'login') as integer) as logins,
        cast(count(*) filter (where event_type = 'search') as integer) as searches,
        cast(count(*) filter (where event_type = 'email_open') as integer) as email_opens,
        cast(count(*) filter (where event_type = 'email_click') as integer) as email_clicks,
        max(delivered_on) as last_delivered_on
    from events
    where delivered_on <= date '{{ var("ds") }}'
    group by unified_id, cast(occurred_at as date)
)

select * from final

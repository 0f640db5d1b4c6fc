with events as (
    select * from {{ ref('customer_events') }}
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
        cast(count(*) filter (where event_type = 'email_click') as integer) as email_clicks
    from events
    where unified_id is not null
    group by unified_id, cast(occurred_at as date)
)

select * from final

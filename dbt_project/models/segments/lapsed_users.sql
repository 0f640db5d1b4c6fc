-- Previously active (a visit, login or order before the window) but no visit, login or
-- order in the last D days. Email opens are not visits.
with

events as (
    select * from {{ ref('customer_events') }}
),

orders as (
    select * from {{ ref('orders') }}
),

activity as (
    select unified_id, occurred_at as active_at
    from events
    where event_type in ('page_view', 'product_view', 'add_to_cart', 'checkout_start',
                         'purchase', 'login', 'search')
      and occurred_at < {{ segment_window_end() }}
    union all
    select unified_id, ordered_at as active_at
    from orders
    where ordered_at < {{ segment_window_end() }}
),

last_activity as (
    select unified_id, max(active_at) as last_active_at
    from activity
    where unified_id is not null
    group by unified_id
),

final as (
    select
        unified_id,
        cast(last_active_at as timestamp) as last_active_at,
        cast({{ dbt.datediff('last_active_at', segment_window_end(), 'day') }} as integer)
            as days_inactive
    from last_activity
    where last_active_at < {{ segment_window_start(var('lapsed_users_days')) }}
)

select * from final

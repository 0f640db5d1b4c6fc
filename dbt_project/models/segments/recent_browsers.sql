-- At least N product views in the last H hours and no purchase (event or order) in them.
with

events as (
    select * from {{ ref('customer_events') }}
),

orders as (
    select * from {{ ref('orders') }}
),

window_events as (
    select *
    from events
    where unified_id is not null
      and {{ segment_in_window('occurred_at', var('recent_browsers_hours'), 'hour') }}
),

browsing as (
    select
        unified_id,
        count(*) filter (where event_type = 'product_view') as product_view_count,
        count(*) filter (where event_type = 'purchase') as purchase_event_count,
        max(occurred_at) filter (where event_type = 'product_view') as last_viewed_at,
        max_by(sku, occurred_at) filter (where event_type = 'product_view') as last_viewed_sku
    from window_events
    group by unified_id
),

window_orders as (
    select distinct unified_id
    from orders
    where unified_id is not null
      and {{ segment_in_window('ordered_at', var('recent_browsers_hours'), 'hour') }}
),

final as (
    select
        browsing.unified_id,
        cast(browsing.product_view_count as integer) as product_view_count,
        cast(browsing.last_viewed_at as timestamp) as last_viewed_at,
        cast(browsing.last_viewed_sku as string) as last_viewed_sku
    from browsing
    left join window_orders on browsing.unified_id = window_orders.unified_id
    where browsing.product_view_count >= {{ var('recent_browsers_min_views') }}
      and browsing.purchase_event_count = 0
      and window_orders.unified_id is null
)

select * from final

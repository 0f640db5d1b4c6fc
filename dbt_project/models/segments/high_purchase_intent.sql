-- More than N product views in the last D days, an add-to-cart in that time, and no
-- purchase since the latest add-to-cart (neither a purchase event nor an order).
-- The events are read where they are used, not through one `events` CTE: DuckDB copies a
-- CTE read twice whole.
with

orders as (
    select * from {{ ref('orders') }}
),

window_events as (
    select *
    from {{ ref('customer_events') }}
    where unified_id is not null
      and {{ segment_in_window('occurred_at', var('high_purchase_intent_days')) }}
),

intent as (
    select
        unified_id,
        count(*) filter (where event_type = 'product_view') as product_view_count,
        max(occurred_at) filter (where event_type = 'add_to_cart') as last_added_to_cart_at,
        max_by(sku, occurred_at) filter (where event_type = 'add_to_cart') as last_added_sku
    from window_events
    group by unified_id
),

-- Purchases in the window only: the add-to-cart is in the window, so a purchase before it
-- is before the add-to-cart anyway (the same members), and DuckDB skips older row groups.
purchases as (
    select unified_id, occurred_at as purchased_at
    from {{ ref('customer_events') }}
    where event_type = 'purchase'
      and {{ segment_in_window('occurred_at', var('high_purchase_intent_days')) }}
    union all
    select unified_id, ordered_at as purchased_at
    from orders
    where {{ segment_in_window('ordered_at', var('high_purchase_intent_days')) }}
),

last_purchase as (
    select unified_id, max(purchased_at) as last_purchased_at
    from purchases
    where unified_id is not null
    group by unified_id
),

final as (
    select
        intent.unified_id,
        cast(intent.product_view_count as integer) as product_view_count,
        cast(intent.last_added_to_cart_at as timestamp) as last_added_to_cart_at,
        cast(intent.last_added_sku as string) as last_added_sku
    from intent
    left join last_purchase on intent.unified_id = last_purchase.unified_id
    where intent.product_view_count > {{ var('high_purchase_intent_min_views') }}
      and intent.last_added_to_cart_at is not null
      and (last_purchase.last_purchased_at is null
           or last_purchase.last_purchased_at < intent.last_added_to_cart_at)
)

select * from final

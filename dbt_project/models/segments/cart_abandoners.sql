-- Added to cart in the last D days with no checkout or purchase after the latest
-- add-to-cart. The cart is what was added since the last checkout/purchase (or since the
-- window opened), with product names for the email.
with

events as (
    select * from {{ ref('customer_events') }}
),

orders as (
    select * from {{ ref('orders') }}
),

products as (
    select * from {{ ref('products') }}
),

checkouts as (
    select unified_id, occurred_at as checked_out_at
    from events
    where event_type in ('checkout_start', 'purchase') and occurred_at < {{ segment_window_end() }}
    union all
    select unified_id, ordered_at as checked_out_at
    from orders
    where ordered_at < {{ segment_window_end() }}
),

last_checkout as (
    select unified_id, max(checked_out_at) as last_checked_out_at
    from checkouts
    where unified_id is not null
    group by unified_id
),

cart_adds as (
    select events.unified_id, events.sku, events.occurred_at
    from events
    left join last_checkout on events.unified_id = last_checkout.unified_id
    where events.unified_id is not null
      and events.event_type = 'add_to_cart'
      and events.sku is not null
      and {{ segment_in_window('events.occurred_at', var('cart_abandoners_days')) }}
      and (last_checkout.last_checked_out_at is null
           or events.occurred_at > last_checkout.last_checked_out_at)
),

cart_lines as (
    select
        cart_adds.unified_id,
        cart_adds.sku,
        coalesce(products.name, cart_adds.sku) as product_name,
        max(cart_adds.occurred_at) as added_at
    from cart_adds
    left join products on cart_adds.sku = products.sku
    group by 1, 2, 3
),

final as (
    select
        unified_id,
        cast(list(sku order by added_at desc, sku) as varchar[]) as cart_skus,
        cast(list(product_name order by added_at desc, sku) as varchar[]) as cart_product_names,
        cast(count(*) as integer) as cart_item_count,
        cast(max(added_at) as timestamp) as last_added_to_cart_at
    from cart_lines
    group by unified_id
)

select * from final

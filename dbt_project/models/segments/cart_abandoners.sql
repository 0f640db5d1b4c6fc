-- Added to cart in the last D days with no checkout or purchase after the latest
-- add-to-cart. The cart is what was added since the last checkout/purchase (or since the
-- window opened), with product names for the email.
-- The events are read where open_cart_adds uses them (twice), not through an `events` CTE:
-- DuckDB would copy every event of the window first.
with

orders as (
    select * from {{ ref('orders') }}
),

products as (
    select * from {{ ref('products') }}
),

cart_adds as (
    {{ open_cart_adds(ref('customer_events'), 'orders', var('cart_abandoners_days')) }}
),

cart_lines as (
    select
        cart_adds.unified_id,
        cart_adds.sku,
        coalesce(products.name, cart_adds.sku) as product_name,
        max(cart_adds.occurred_at) as added_at
    from cart_adds
    left join products on cart_adds.sku = products.sku
    group by cart_adds.unified_id, cart_adds.sku, coalesce(products.name, cart_adds.sku)
),

final as (
    select
        unified_id,
        cast({{ ordered_list('sku', 'added_at desc, sku') }} as {{ type_string_list() }}) as cart_skus,
        cast({{ ordered_list('product_name', 'added_at desc, sku') }} as {{ type_string_list() }}) as cart_product_names,
        cast(count(*) as integer) as cart_item_count,
        cast(max(added_at) as timestamp) as last_added_to_cart_at
    from cart_lines
    group by unified_id
)

select * from final

with order_items as (
    select * from {{ ref('stg_shop__order_items') }}
),

orders as (
    select * from {{ ref('orders') }}
),

products as (
    select * from {{ ref('products') }}
),

final as (
    select
        order_items.order_id,
        order_items.line_number,
        orders.unified_id,
        order_items.sku,
        products.category,
        order_items.quantity,
        order_items.unit_price,
        order_items.line_amount,
        orders.ordered_at,
        orders.status
    from order_items
    inner join orders
        on order_items.order_id = orders.order_id
    left join products
        on order_items.sku = products.sku
)

select * from final

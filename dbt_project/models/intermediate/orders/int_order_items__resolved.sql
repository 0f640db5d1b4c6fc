-- One row per (order_id, line_number) of an order that reaches a person: its person,
-- the sku's current category, and the order's time and status. The order_items mart and
-- the per-person activity both read this model.
-- Incremental (exception to the intermediate-as-tables rule): a night re-writes only the
-- lines of orders delivered since its last build, of orders whose person changed, and of
-- re-categorised skus (macros/incremental_orders.sql); `--full-refresh` gives the same table.
{{ incremental_orders_config('items') }}

with order_items as (
    select * from {{ ref('stg_shop__order_items') }}
    where {{ in_touched_orders() }}
),

orders as (
    select * from {{ ref('int_orders__resolved') }}
    where {{ in_touched_orders() }}
),

products as (
    select * from {{ ref('stg_shop__products') }}
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

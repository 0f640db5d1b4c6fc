-- Orders that reach no person (int_orders__person_keys): kept here with their reason, not
-- dropped, so staged orders = orders + quarantined_orders. No email is copied here (the
-- reason says the order had none that is valid); the lake quarantine keeps the raw lines.
with orders as (
    select * from {{ ref('stg_shop__orders') }}
),

person_keys as (
    select * from {{ ref('int_orders__person_keys') }}
),

order_items as (
    select * from {{ ref('stg_shop__order_items') }}
),

item_lines as (
    select order_id, count(*) as line_count
    from order_items
    group by order_id
),

final as (
    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        orders.status,
        orders.currency,
        orders.total_amount,
        cast(coalesce(item_lines.line_count, 0) as integer) as line_count,
        orders.delivered_on,
        person_keys.quarantine_reason as reason
    from orders
    inner join person_keys
        on orders.order_id = person_keys.order_id
    left join item_lines
        on orders.order_id = item_lines.order_id
    where person_keys.quarantine_reason is not null
)

select * from final

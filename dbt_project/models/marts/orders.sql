-- One row per order that reaches a person (int_orders__resolved); orders that reach no
-- person are in quarantined_orders instead.
with orders as (
    select * from {{ ref('int_orders__resolved') }}
),

final as (
    select
        order_id,
        unified_id,
        customer_id,
        ordered_at,
        ordered_on,
        status,
        currency,
        total_amount,
        item_count,
        is_guest_checkout
    from orders
)

select * from final

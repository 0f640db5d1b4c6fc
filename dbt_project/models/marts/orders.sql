-- One row per order that reaches a person (int_orders__resolved); orders that reach no
-- person are in quarantined_orders instead.
-- A view (exception to the marts-as-tables rule, like customer_events): the orders are kept
-- incrementally in int_orders__resolved; a table here would copy them every night. On Spark
-- a table (the serving copy takes tables' files).
{{ config(materialized=served_view()) }}

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

-- One row per order line of an order that reaches a person (int_order_items__resolved).
-- A view on DuckDB, a table on Spark, as orders (the lines are kept incrementally there).
{{ config(materialized=served_view()) }}

with order_items as (
    select * from {{ ref('int_order_items__resolved') }}
),

final as (
    select
        order_id,
        line_number,
        unified_id,
        sku,
        category,
        quantity,
        unit_price,
        line_amount,
        ordered_at,
        status
    from order_items
)

select * from final

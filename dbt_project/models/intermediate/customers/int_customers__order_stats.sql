-- Order history per person (every person, 0 orders included). Only `placed` orders count:
-- cancelled and refunded orders are neither revenue nor a purchase.
with id_assignment as (
    select * from {{ ref('int_identity__id_assignment') }}
),

orders as (
    select * from {{ ref('int_orders__resolved') }}
),

persons as (
    select distinct unified_id from id_assignment
),

placed as (
    select
        unified_id,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        count(*) as order_count,
        {{ exact_sum('total_amount') }} as revenue
    from orders
    where status = 'placed' and unified_id is not null
    group by unified_id
),

final as (
    select
        persons.unified_id,
        placed.first_order_at,
        placed.last_order_at,
        cast(coalesce(placed.order_count, 0) as integer) as order_count,
        cast(coalesce(placed.revenue, 0) as double) as revenue
    from persons
    left join placed using (unified_id)
)

select * from final

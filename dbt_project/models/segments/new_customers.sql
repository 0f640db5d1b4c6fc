-- First order (not cancelled) in the last D days.
with

orders as (
    select * from {{ ref('orders') }}
),

first_orders as (
    select
        unified_id,
        min(ordered_at) as first_order_at,
        min_by(order_id, ordered_at) as first_order_id,
        min_by(total_amount, ordered_at) as first_order_amount
    from orders
    where unified_id is not null
      and status <> 'cancelled'
      and ordered_at < {{ segment_window_end() }}
    group by unified_id
),

final as (
    select
        unified_id,
        cast(first_order_at as timestamp) as first_order_at,
        cast(first_order_id as string) as first_order_id,
        cast(first_order_amount as double) as first_order_amount
    from first_orders
    where first_order_at >= {{ segment_window_start(var('new_customers_days')) }}
)

select * from final

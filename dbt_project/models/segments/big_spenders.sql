-- Spent more than the threshold in the last M months (placed orders only: cancelled and
-- refunded orders are not spend). Amounts are summed across currencies as they stand.
with

orders as (
    select * from {{ ref('orders') }}
),

spend as (
    select
        unified_id,
        {{ exact_sum('total_amount') }} as spend_last_12_months,
        count(*) as order_count_last_12_months,
        max(ordered_at) as last_order_at
    from orders
    where unified_id is not null
      and status = 'placed'
      and {{ segment_in_window('ordered_at', var('big_spenders_months'), 'month') }}
    group by unified_id
),

final as (
    select
        unified_id,
        cast(round(spend_last_12_months, 2) as double) as spend_last_12_months,
        cast(order_count_last_12_months as integer) as order_count_last_12_months,
        cast(last_order_at as timestamp) as last_order_at
    from spend
    where spend_last_12_months > {{ var('big_spenders_min_spend') }}
)

select * from final

-- customer_profiles.revenue / order_count must equal the placed orders in `orders`,
-- person by person and in total (a person without placed orders has 0 / 0).
with profiles as (
    select unified_id, revenue, order_count from {{ ref('customer_profiles') }}
),

placed as (
    select unified_id, {{ exact_sum('total_amount') }} as revenue, count(*) as order_count
    from {{ ref('orders') }}
    where status = 'placed'
    group by unified_id
),

compared as (
    select
        coalesce(profiles.unified_id, placed.unified_id) as unified_id,
        profiles.revenue as profile_revenue,
        coalesce(placed.revenue, 0) as orders_revenue,
        profiles.order_count as profile_order_count,
        coalesce(placed.order_count, 0) as orders_order_count
    from profiles
    full outer join placed on profiles.unified_id = placed.unified_id
)

select *
from compared
where profile_revenue is null
    or abs(profile_revenue - orders_revenue) > 0.005
    or profile_order_count <> orders_order_count

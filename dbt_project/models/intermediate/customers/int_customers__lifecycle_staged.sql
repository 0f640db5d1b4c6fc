-- Lifecycle stage as of the run's logical date (var `ds`, never the wall clock).
-- First match wins:
--   prospect  no placed order
--   new       first placed order at most `lifecycle_new_days` (30) days before ds
--   active    last placed order at most `lifecycle_active_days` (90) days before ds
--   at_risk   last placed order 91..`lifecycle_at_risk_days` (180) days before ds
--   lapsed    last placed order more than 180 days before ds
with order_stats as (
    select * from {{ ref('int_customers__order_stats') }}
),

days_since as (
    select
        unified_id,
        first_order_at,
        last_order_at,
        {{ dbt.datediff("cast(first_order_at as date)", "date '" ~ var('ds') ~ "'", "day") }}
            as days_since_first_order,
        {{ dbt.datediff("cast(last_order_at as date)", "date '" ~ var('ds') ~ "'", "day") }}
            as days_since_last_order
    from order_stats
),

final as (
    select
        unified_id,
        days_since_first_order,
        days_since_last_order,
        case
            when last_order_at is null then 'prospect'
            when days_since_first_order <= {{ var('lifecycle_new_days', 30) }} then 'new'
            when days_since_last_order <= {{ var('lifecycle_active_days', 90) }} then 'active'
            when days_since_last_order <= {{ var('lifecycle_at_risk_days', 180) }} then 'at_risk'
            else 'lapsed'
        end as lifecycle_stage
    from days_since
)

select * from final

-- Known (has an email), consented (opted in, not unsubscribed, not erased) and never
-- purchased. The only segment whose definition includes consent.
with

profiles as (
    select * from {{ ref('customer_profiles') }}
),

orders as (
    select * from {{ ref('orders') }}
),

buyers as (
    select distinct unified_id
    from orders
    where unified_id is not null and ordered_at < {{ segment_window_end() }}
),

final as (
    select
        profiles.unified_id,
        cast(profiles.opted_in_at as timestamp) as opted_in_at,
        cast(profiles.first_seen_at as timestamp) as first_seen_at,
        cast(profiles.favourite_category as string) as favourite_category
    from profiles
    left join buyers on profiles.unified_id = buyers.unified_id
    where profiles.email is not null
      and coalesce(profiles.is_opted_in, false)
      and not coalesce(profiles.is_unsubscribed, false)
      and not coalesce(profiles.is_erased, false)
      and buyers.unified_id is null
)

select * from final

-- Viewed products of one category at least N times in the last D days. One row per person:
-- their top category (most views; ties go to the most recent view, then the name).
with

events as (
    select * from {{ ref('customer_events') }}
),

category_views as (
    select
        unified_id,
        category,
        count(*) as category_view_count,
        max(occurred_at) as last_viewed_at
    from events
    where unified_id is not null
      and category is not null
      and event_type = 'product_view'
      and {{ segment_in_window('occurred_at', var('category_interest_days')) }}
    group by unified_id, category
),

ranked as (
    select
        *,
        row_number() over (
            partition by unified_id
            order by category_view_count desc, last_viewed_at desc, category
        ) as category_rank
    from category_views
    where category_view_count >= {{ var('category_interest_min_views') }}
),

final as (
    select
        unified_id,
        cast(category as string) as category,
        cast(category_view_count as integer) as category_view_count,
        cast(last_viewed_at as timestamp) as last_viewed_at
    from ranked
    where category_rank = 1
)

select * from final

-- What the content rules (seed content_blocks) key on, per person, as of the end of ds:
--   country           upper(profile country)
--   content_language  lower(profile language), `en` when unknown
--   viewed_category   the category with most product views in the last
--                     `content_viewed_days` (14) days; ties alphabetical
--   engagement_level  engaged: last email open/click or site visit at most
--                     `content_engaged_days` (30) days before ds; cooling: at most
--                     `content_cooling_days` (90); dormant: older or never
--   cart_value        price sum of the products in the open cart (macro open_cart_adds)
--   cart_state        none | below_threshold | free_shipping (`free_shipping_threshold`, 50)
with

profiles as (
    select * from {{ ref('int_customers__profiles') }}
),

orders as (
    select * from {{ ref('int_orders__resolved') }}
),

products as (
    select * from {{ ref('stg_shop__products') }}
),

-- The events are read where they are used (here and twice in open_cart_adds), not through
-- one CTE: DuckDB would copy every event of the windows (14M rows at 1M people, 3.8 s).
views as (
    select unified_id, category, count(*) as product_views
    from {{ ref('int_events__resolved') }}
    where event_type = 'product_view'
      and unified_id is not null
      and category is not null
      and {{ segment_in_window('occurred_at', var('content_viewed_days', 14)) }}
    group by unified_id, category
),

top_view as (
    select
        unified_id,
        category as viewed_category,
        row_number() over (partition by unified_id order by product_views desc, category) as rank_in_person
    from views
),

cart_adds as (
    {{ open_cart_adds(ref('int_events__resolved'), 'orders', var('cart_abandoners_days')) }}
),

cart as (
    select cart_skus.unified_id, {{ exact_sum('coalesce(products.price, 0)') }} as cart_value
    from (select distinct unified_id, sku from cart_adds) as cart_skus
    left join products on cart_skus.sku = products.sku
    group by cart_skus.unified_id
),

touch as (
    select
        unified_id,
        -- greatest() skips nulls (DuckDB, Spark, Trino): the latest known touch.
        {{ dbt.datediff(
            "cast(greatest(last_email_open_at, last_email_click_at, last_seen_at) as date)",
            "date '" ~ var('ds') ~ "'", "day") }} as days_since_touch
    from profiles
),

final as (
    select
        profiles.unified_id,
        upper(profiles.country) as country,
        coalesce(lower(profiles.language), 'en') as content_language,
        top_view.viewed_category,
        case
            when touch.days_since_touch <= {{ var('content_engaged_days', 30) }} then 'engaged'
            when touch.days_since_touch <= {{ var('content_cooling_days', 90) }} then 'cooling'
            else 'dormant'
        end as engagement_level,
        cast(cart.cart_value as double) as cart_value,
        case
            when cart.unified_id is null then 'none'
            when cart.cart_value >= {{ var('free_shipping_threshold', 50) }} then 'free_shipping'
            else 'below_threshold'
        end as cart_state
    from profiles
    left join top_view on profiles.unified_id = top_view.unified_id and top_view.rank_in_person = 1
    left join cart on profiles.unified_id = cart.unified_id
    left join touch on profiles.unified_id = touch.unified_id
)

select * from final

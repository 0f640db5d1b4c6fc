-- One row per (person, product, day) with repeated views and no add_to_cart since.
with recent as (
    select * from events
    where unified_id is not null
      and occurred_at > {{ now }} - interval 2 day
      and event_type in ('product_view', 'add_to_cart', 'checkout_start', 'purchase')
),

views as (
    select
        unified_id,
        sku,
        cast(occurred_at as date) as viewed_on,
        count(*) as view_count,
        max(occurred_at) as last_viewed_at
    from recent
    where event_type = 'product_view' and sku is not null
    group by all
    having count(*) >= {{ min_views }}
),

carted as (
    select unified_id, max(occurred_at) as last_cart_at
    from recent
    where event_type in ('add_to_cart', 'checkout_start', 'purchase')
    group by unified_id
),

final as (
    select
        views.unified_id,
        'browse_abandoned|' || views.unified_id || '|' || views.sku || '|' || views.viewed_on
            as dedup_key,
        views.last_viewed_at + {{ wait }} as due_at,
        products.name as product_name,
        products.price as product_price,
        views.view_count
    from views
    left join carted on carted.unified_id = views.unified_id
    left join products on products.sku = views.sku
    where carted.last_cart_at is null or carted.last_cart_at < views.last_viewed_at
)

select * from final

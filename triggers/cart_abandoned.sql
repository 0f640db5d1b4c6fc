-- One row per abandoned cart that is due: the person's add_to_cart events since their last
-- checkout_start or purchase, with no checkout or purchase after them.
with recent as (
    select * from events
    where unified_id is not null
      and occurred_at > {{ now }} - interval 2 day
      and event_type in ('add_to_cart', 'checkout_start', 'purchase')
),

-- A person's cart number: how many checkouts/purchases came before the event.
numbered as (
    select
        *,
        count(*) filter (where event_type in ('checkout_start', 'purchase')) over (
            partition by unified_id order by occurred_at, event_id
            rows between unbounded preceding and 1 preceding
        ) as cart_number
    from recent
),

carts as (
    select
        unified_id,
        cart_number,
        min(occurred_at) filter (where event_type = 'add_to_cart') as cart_started_at,
        max(occurred_at) filter (where event_type = 'add_to_cart') as last_added_at,
        list(distinct sku) filter (where event_type = 'add_to_cart' and sku is not null) as skus,
        count(*) filter (where event_type in ('checkout_start', 'purchase')) as conversions
    from numbered
    group by unified_id, cart_number
),

abandoned as (
    select * from carts
    where cart_started_at is not null and conversions = 0
),

items as (
    select
        abandoned.unified_id,
        abandoned.cart_number,
        list(products.name order by products.name) as item_names,
        sum(products.price) as cart_value,
        count(*) as item_count
    from abandoned, unnest(abandoned.skus) as cart(sku)
    left join products on products.sku = cart.sku
    group by all
),

final as (
    select
        abandoned.unified_id,
        'cart_abandoned|' || abandoned.unified_id || '|' || strftime(abandoned.cart_started_at, '%Y-%m-%dT%H:%M:%S.%f')
            as dedup_key,
        abandoned.last_added_at + {{ wait }} as due_at,
        items.item_names,
        round(items.cart_value, 2) as cart_value,
        items.item_count,
        (select products.name from recommendations, products
         where recommendations.unified_id = abandoned.unified_id
           and products.sku = recommendations.next_best_products[1]) as reco_1
    from abandoned
    left join items using (unified_id, cart_number)
)

select * from final

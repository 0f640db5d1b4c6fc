-- One row per purchase event whose wait is over.
with purchases as (
    select * from events
    where unified_id is not null
      and event_type = 'purchase'
      and occurred_at > {{ now }} - {{ wait }} - interval 2 day
),

recommended as (
    select
        recommendations.unified_id,
        list(products.name order by reco.position) as names
    from recommendations,
        unnest(recommendations.next_best_products) with ordinality as reco(sku, position)
    inner join products on products.sku = reco.sku
    group by recommendations.unified_id
),

final as (
    select
        purchases.unified_id,
        'post_purchase_cross_sell|' || purchases.unified_id || '|' || purchases.event_id as dedup_key,
        purchases.occurred_at + {{ wait }} as due_at,
        bought.name as bought_name,
        recommended.names[1] as reco_1,
        recommended.names[2] as reco_2,
        recommended.names[3] as reco_3
    from purchases
    left join products as bought on bought.sku = purchases.sku
    left join recommended on recommended.unified_id = purchases.unified_id
)

select * from final

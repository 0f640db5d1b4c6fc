-- The person of an order: its shop account, else its own normalised email (guest checkout,
-- or an account the warehouse does not hold: int_orders__person_keys). Orders that reach no
-- person are in quarantined_orders instead, so every staged order is in exactly one of the two.
with orders as (
    select * from {{ ref('stg_shop__orders') }}
),

person_keys as (
    select * from {{ ref('int_orders__person_keys') }}
),

order_items as (
    select * from {{ ref('stg_shop__order_items') }}
),

identity_map as (
    select * from {{ ref('identity_map') }}
),

item_counts as (
    select order_id, sum(quantity) as item_count
    from order_items
    group by order_id
),

final as (
    select
        orders.order_id,
        identity_map.unified_id,
        orders.customer_id,
        orders.ordered_at,
        orders.ordered_on,
        orders.status,
        orders.currency,
        orders.total_amount,
        cast(coalesce(item_counts.item_count, 0) as integer) as item_count,
        orders.is_guest_checkout
    from orders
    inner join person_keys
        on orders.order_id = person_keys.order_id
    left join identity_map
        on person_keys.person_source = identity_map.source
        and person_keys.person_source_id = identity_map.source_id
    left join item_counts
        on orders.order_id = item_counts.order_id
    where person_keys.quarantine_reason is null
)

select * from final

-- The person of an order: its shop account, or for a guest checkout its normalised email.
with orders as (
    select * from {{ ref('stg_shop__orders') }}
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
        coalesce(accounts.unified_id, guests.unified_id) as unified_id,
        orders.customer_id,
        orders.ordered_at,
        orders.ordered_on,
        orders.status,
        orders.currency,
        orders.total_amount,
        cast(coalesce(item_counts.item_count, 0) as integer) as item_count,
        orders.is_guest_checkout
    from orders
    left join identity_map as accounts
        on accounts.source = 'shop'
        and orders.customer_id = accounts.source_id
    left join identity_map as guests
        on guests.source = 'guest'
        and orders.is_guest_checkout
        and orders.email_normalized = guests.source_id
    left join item_counts
        on orders.order_id = item_counts.order_id
)

select * from final

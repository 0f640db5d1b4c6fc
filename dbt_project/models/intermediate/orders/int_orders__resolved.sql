-- One row per order that reaches a person: the person of its shop account, else of its own
-- normalised email (guest checkout, or an account the warehouse does not hold:
-- int_orders__person_keys), and its item count. Orders that reach no person are in
-- quarantined_orders instead, so every staged order is in exactly one of the two.
-- The orders mart and the per-person order stats both read this model.
-- Incremental (exception to the intermediate-as-tables rule): a night re-resolves only the
-- orders delivered since its last build and those whose person changed
-- (macros/incremental_orders.sql); `--full-refresh` gives the same table.
{{ incremental_orders_config('orders') }}

with orders as (
    select * from {{ ref('stg_shop__orders') }}
    where {{ in_touched_orders() }}
),

person_keys as (
    select * from {{ ref('int_orders__person_keys') }}
    where {{ in_touched_orders() }}
),

order_items as (
    select * from {{ ref('stg_shop__order_items') }}
    where {{ in_touched_orders() }}
),

id_assignment as (
    select * from {{ ref('int_identity__id_assignment') }}
),

item_counts as (
    select order_id, sum(quantity) as item_count
    from order_items
    group by order_id
),

final as (
    select
        orders.order_id,
        id_assignment.unified_id,
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
    left join id_assignment
        on person_keys.person_source = id_assignment.source
        and person_keys.person_source_id = id_assignment.source_id
    left join item_counts
        on orders.order_id = item_counts.order_id
    where person_keys.quarantine_reason is null
)

select * from final

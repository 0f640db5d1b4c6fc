-- Every staged order is in exactly one place: once in `orders` with one person, or once in
-- `quarantined_orders` with a reason; never in both, never dropped. An invariant of our own
-- models (a row returned is a bug in them, never the data's fault), so it fails the build.
with staged as (
    select order_id from {{ ref('stg_shop__orders') }}
),

published as (
    select order_id, count(*) as n_rows, count(unified_id) as n_persons
    from {{ ref('orders') }}
    group by order_id
),

quarantined as (
    select order_id, count(*) as n_rows from {{ ref('quarantined_orders') }} group by order_id
),

final as (
    select
        coalesce(staged.order_id, published.order_id, quarantined.order_id) as order_id,
        staged.order_id is not null as is_staged,
        coalesce(published.n_rows, 0) as rows_in_orders,
        coalesce(published.n_persons, 0) as persons_in_orders,
        coalesce(quarantined.n_rows, 0) as rows_in_quarantine
    from staged
    full outer join published on staged.order_id = published.order_id
    full outer join quarantined
        on coalesce(staged.order_id, published.order_id) = quarantined.order_id
)

select *
from final
where
    not is_staged
    or rows_in_orders + rows_in_quarantine <> 1
    or persons_in_orders <> rows_in_orders

-- Every order has exactly one person: its shop account (or guest email) appears once in
-- identity_map, so the join neither drops nor duplicates orders.
with orders as (
    select order_id, customer_id, email_normalized, is_guest_checkout
    from {{ ref('stg_shop__orders') }}
),

identity_map as (
    select source, source_id, unified_id from {{ ref('identity_map') }}
),

-- Two equi-joins (an OR join condition cannot be hashed: a nested loop at scale).
matches as (
    select
        orders.order_id,
        (accounts.unified_id is not null)::int + (guests.unified_id is not null)::int
            as n_persons
    from orders
    left join identity_map as accounts
        on
            accounts.source = 'shop'
            and orders.customer_id = accounts.source_id
    left join identity_map as guests
        on
            guests.source = 'guest'
            and orders.is_guest_checkout
            and orders.email_normalized = guests.source_id
),

mart as (
    select order_id, count(*) as n_rows from {{ ref('orders') }} group by order_id
)

select matches.order_id, matches.n_persons, mart.n_rows
from matches
left join mart on matches.order_id = mart.order_id
where matches.n_persons <> 1 or coalesce(mart.n_rows, 0) <> 1

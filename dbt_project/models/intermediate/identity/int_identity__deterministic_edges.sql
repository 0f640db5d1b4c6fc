-- One row per deterministic link between two records (node_a, node_b) with the rule that
-- made it. Shared keys are linked as a star to the group's smallest record key, not as a
-- clique: same components, linear instead of quadratic edge count.
-- The records are named where they are read (five times), not as one CTE, which DuckDB
-- would copy whole (2.3M records at 1M people).
with junk as (
    select * from {{ ref('int_identity__junk_values') }}
),

cookie_keys as (
    select * from {{ ref('int_identity__cookie_keys') }}
),

orders as (
    select * from {{ ref('stg_shop__orders') }}
),

usable_events as (
    select distinct
        'pixel:' || cookie_keys.anonymous_id as pixel_key,
        cookie_keys.customer_id,
        cookie_keys.email_sha256
    from cookie_keys
    left join junk
        on junk.key_type = 'cookie' and cookie_keys.anonymous_id = junk.key_value
    where
        (cookie_keys.customer_id is not null or cookie_keys.email_sha256 is not null)
        and junk.key_value is null
),

email_anchor as (
    select record_key, min(record_key) over (partition by email_normalized) as anchor_key
    from {{ ref('int_identity__guarded_records') }}
    where email_normalized is not null
),

same_email as (
    select anchor_key as node_a, record_key as node_b, 'email' as match_rule
    from email_anchor
    where record_key <> anchor_key
),

-- A cookie seen logged in belongs to the shop account it logged in as.
cookie_login as (
    select distinct
        usable_events.pixel_key as node_a,
        records.record_key as node_b,
        'cookie_login' as match_rule
    from usable_events
    inner join {{ ref('int_identity__guarded_records') }} as records
        on records.source = 'shop' and usable_events.customer_id = records.source_id
),

-- A cookie that opened or clicked an email belongs to whoever has that email (by its hash).
hash_anchor as (
    select email_sha256, min(record_key) as anchor_key
    from {{ ref('int_identity__guarded_records') }}
    where email_sha256 is not null and source in ('crm', 'shop', 'guest')
    group by email_sha256
),

email_hash as (
    select distinct
        usable_events.pixel_key as node_a,
        hash_anchor.anchor_key as node_b,
        'email_hash' as match_rule
    from usable_events
    inner join hash_anchor on usable_events.email_sha256 = hash_anchor.email_sha256
),

-- The checkout-complete page carries the order id (`?order=...`): the cookie that placed an
-- order belongs to the order's account, or to the guest record of its email.
purchase_orders as (
    select distinct
        'pixel:' || cookie_keys.anonymous_id as pixel_key,
        cookie_keys.checkout_order_id as order_id
    from cookie_keys
    left join junk
        on junk.key_type = 'cookie' and cookie_keys.anonymous_id = junk.key_value
    where cookie_keys.checkout_order_id is not null and junk.key_value is null
),

-- Two equi-joins, not one join on `a or b`: an OR condition cannot be hashed and turns
-- into a nested loop (it stalled the build at 1M customers).
cookie_order as (
    select distinct
        purchase_orders.pixel_key as node_a,
        records.record_key as node_b,
        'cookie_order' as match_rule
    from purchase_orders
    inner join orders on purchase_orders.order_id = orders.order_id::string
    inner join {{ ref('int_identity__guarded_records') }} as records
        on
            records.source = 'shop'
            and orders.customer_id::string = records.source_id
    where orders.customer_id is not null
    union
    select distinct
        purchase_orders.pixel_key as node_a,
        records.record_key as node_b,
        'cookie_order' as match_rule
    from purchase_orders
    inner join orders on purchase_orders.order_id = orders.order_id::string
    inner join {{ ref('int_identity__guarded_records') }} as records
        on
            records.source = 'guest'
            and orders.email_normalized = records.source_id
    where orders.customer_id is null
),

final as (
    select * from same_email
    union all
    select * from cookie_order
    union all
    select * from cookie_login
    union all
    select * from email_hash
)

select * from final

-- One row per distinct (cookie, shop account, email hash, order id) seen together on pixel
-- events, with the last time: the one pass over the events that identity needs. Pixel
-- records (int_identity__records), shared cookies (int_identity__junk_values) and the
-- cookie links (int_identity__deterministic_edges) read these rows, not the events.
with events as (
    select * from {{ ref('stg_pixel__events') }}
),

keyed as (
    select
        anonymous_id::string as anonymous_id,
        customer_id::string as customer_id,
        email_sha256,
        -- The checkout-complete page carries the order id (`?order=...`).
        case
            when url like '%order=%' then regexp_extract(url, '[?&]order=([^&#]+)', 1)
        end as order_id,
        occurred_at
    from events
    where anonymous_id is not null
),

final as (
    select
        anonymous_id,
        customer_id,
        email_sha256,
        order_id,
        max(occurred_at) as last_occurred_at
    from keyed
    group by anonymous_id, customer_id, email_sha256, order_id
)

select * from final

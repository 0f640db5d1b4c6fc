-- The person of an event: the logged-in shop account if there is one, else the cookie.
with events as (
    select * from {{ ref('stg_pixel__events') }}
),

identity_map as (
    select * from {{ ref('identity_map') }}
),

products as (
    select * from {{ ref('products') }}
),

final as (
    select
        events.event_id,
        coalesce(accounts.unified_id, cookies.unified_id) as unified_id,
        events.occurred_at,
        events.event_type,
        events.sku,
        products.category,
        events.campaign_id,
        events.variant,
        events.device
    from events
    left join identity_map as accounts
        on accounts.source = 'shop'
        and events.customer_id = accounts.source_id
    left join identity_map as cookies
        on cookies.source = 'pixel'
        and events.anonymous_id = cookies.source_id
    left join products
        on events.sku = products.sku
)

select * from final

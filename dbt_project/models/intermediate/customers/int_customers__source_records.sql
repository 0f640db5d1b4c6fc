-- Every source record that carries personal data (CRM contact, shop account, guest
-- checkout email) with the person it belongs to: the input of golden-record survivorship.
with contacts as (
    select * from {{ ref('stg_crm__contacts') }}
),

customers as (
    select * from {{ ref('stg_shop__customers') }}
),

order_keys as (
    select * from {{ ref('int_orders__person_keys') }}
),

identity_map as (
    select * from {{ ref('identity_map') }}
),

crm as (
    select
        'crm' as source,
        contact_id as source_id,
        1 as source_priority,
        email, is_email_valid, email_sha256,
        first_name, first_name_clean, last_name, last_name_clean,
        phone_e164, street, city, postcode, country,
        language, birth_date, gender,
        is_opted_in, opted_in_at, unsubscribed_at,
        created_at, updated_at
    from contacts
),

shop as (
    select
        'shop' as source,
        customer_id as source_id,
        2 as source_priority,
        email, is_email_valid, email_sha256,
        first_name, first_name_clean, last_name, last_name_clean,
        phone_e164, street, city, postcode, country,
        cast(null as string) as language,
        cast(null as date) as birth_date,
        cast(null as string) as gender,
        cast(null as boolean) as is_opted_in,
        cast(null as timestamp) as opted_in_at,
        cast(null as timestamp) as unsubscribed_at,
        created_at, updated_at
    from customers
),

-- A guest checkout (or an order whose account the warehouse does not hold) is known only by
-- its email: the most recent spelling of it.
guest as (
    select {{ star_except(['qualify_keep']) }} from (
        select
        'guest' as source,
        email_normalized as source_id,
        3 as source_priority,
        email, is_email_valid, email_sha256,
        cast(null as string) as first_name,
        cast(null as string) as first_name_clean,
        cast(null as string) as last_name,
        cast(null as string) as last_name_clean,
        cast(null as string) as phone_e164,
        cast(null as string) as street,
        cast(null as string) as city,
        cast(null as string) as postcode,
        cast(null as string) as country,
        cast(null as string) as language,
        cast(null as date) as birth_date,
        cast(null as string) as gender,
        cast(null as boolean) as is_opted_in,
        cast(null as timestamp) as opted_in_at,
        cast(null as timestamp) as unsubscribed_at,
        min(ordered_at) over (partition by email_normalized) as created_at,
        ordered_at as updated_at,
            (row_number() over (
        partition by email_normalized order by ordered_at desc, order_id desc
    ) = 1) as qualify_keep
        from order_keys
    where person_source = 'guest'
    ) as qualified
    where qualify_keep
),

records as (
    select * from crm
    union all
    select * from shop
    union all
    select * from guest
),

final as (
    select
        identity_map.unified_id,
        records.*
    from records
    inner join identity_map
        on records.source = identity_map.source
        and records.source_id = identity_map.source_id
)

select * from final

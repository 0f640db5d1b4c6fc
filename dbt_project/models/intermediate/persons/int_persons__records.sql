-- One row per source record that carries personal data: CRM contact, shop account, guest
-- checkout email (an order whose account the warehouse does not hold counts as a guest:
-- int_orders__person_keys). The one union of these records: identity resolution
-- (int_identity__records) matches on its cleaned fields, survivorship
-- (int_customers__source_records) picks the golden record from its display fields.
-- Stamped (changed_at: when the run that last wrote its row started, changed_rows.sql), so that
-- identity reads only tonight's changed records (int_identity__records).
{{ changed_rows_config(['source', 'source_id'], 'source_priority', stamped=true) }}
with contacts as (
    select * from {{ ref('stg_crm__contacts') }}
),

customers as (
    select * from {{ ref('stg_shop__customers') }}
),

order_keys as (
    select * from {{ ref('int_orders__person_keys') }}
),

crm as (
    select
        'crm' as source,
        cast(contact_id as string) as source_id,
        1 as source_priority,
        email, is_email_valid, email_normalized, email_sha256,
        first_name, first_name_clean, last_name, last_name_clean,
        phone_e164, street, street_clean, city, city_clean, postcode, postcode_clean, country,
        language, birth_date, gender,
        is_opted_in, opted_in_at, unsubscribed_at,
        created_at, updated_at
    from contacts
),

shop as (
    select
        'shop' as source,
        cast(customer_id as string) as source_id,
        2 as source_priority,
        email, is_email_valid, email_normalized, email_sha256,
        first_name, first_name_clean, last_name, last_name_clean,
        phone_e164, street, street_clean, city, city_clean, postcode, postcode_clean, country,
        cast(null as string) as language,
        cast(null as date) as birth_date,
        cast(null as string) as gender,
        cast(null as boolean) as is_opted_in,
        cast(null as timestamp) as opted_in_at,
        cast(null as timestamp) as unsubscribed_at,
        created_at, updated_at
    from customers
),

-- A guest is known only by its email: the most recent spelling of it (and its hash).
guest_orders as (
    select
        email_normalized,
        email,
        is_email_valid,
        email_sha256,
        min(ordered_at) over (partition by email_normalized) as created_at,
        ordered_at as updated_at,
        row_number() over (
            partition by email_normalized order by ordered_at desc, order_id desc
        ) as recency_rank
    from order_keys
    where person_source = 'guest'
),

guest as (
    select
        'guest' as source,
        email_normalized as source_id,
        3 as source_priority,
        email, is_email_valid, email_normalized, email_sha256,
        cast(null as string) as first_name,
        cast(null as string) as first_name_clean,
        cast(null as string) as last_name,
        cast(null as string) as last_name_clean,
        cast(null as string) as phone_e164,
        cast(null as string) as street,
        cast(null as string) as street_clean,
        cast(null as string) as city,
        cast(null as string) as city_clean,
        cast(null as string) as postcode,
        cast(null as string) as postcode_clean,
        cast(null as string) as country,
        cast(null as string) as language,
        cast(null as date) as birth_date,
        cast(null as string) as gender,
        cast(null as boolean) as is_opted_in,
        cast(null as timestamp) as opted_in_at,
        cast(null as timestamp) as unsubscribed_at,
        created_at, updated_at
    from guest_orders
    where recency_rank = 1
),

final as (
    select *, {{ changed_at_column() }} from crm
    union all
    select *, {{ changed_at_column() }} from shop
    union all
    select *, {{ changed_at_column() }} from guest
)

-- Written as its changes (changed_rows.sql).
{{ changed_rows('final', ['source', 'source_id'], stamped=true) }}

-- One row per source record that carries personal data: CRM contact, shop account, guest
-- checkout email (an order whose account the warehouse does not hold counts as a guest:
-- int_orders__person_keys). The one union of these records: identity resolution
-- (int_identity__records) matches on its cleaned fields, survivorship
-- (int_customers__source_records) picks the golden record from its display fields.
-- Stamped (changed_at: when the run that last wrote its row started, changed_rows.sql), so that
-- identity reads only tonight's changed records (int_identity__records).
-- Incremental from the deliveries: a night computes the contacts and accounts with a version
-- delivered after the newest delivery its rows came from before `ds` (a record's latest
-- version changes only through a new one; delivered_on is the row's version's), the rows whose
-- delivery is read again (a rerun), the records gone, and every guest (a guest row follows
-- its orders' keys, which int_orders__person_keys re-decides); every other row stays.
{{ changed_rows_config(['source', 'source_id'], 'source_priority', stamped=true) }}
{#- The newest delivery its rows came from before ds; none (compute whole) when not
    incremental or the table was built before it kept delivered_on. #}
{%- set bound = newest_stamp(this, "delivered_on < date '" ~ var('ds') ~ "'", column='delivered_on')
                if is_incremental() else none %}

with
{% if bound is not none -%}
-- The records whose row may differ from the table's: only those are computed and compared.
-- Versions named where read, not through a CTE read twice, which DuckDB would copy whole.
scope as (
    -- Rows whose own delivery is read again (a rerun), and every guest.
    select source, source_id from {{ this }}
    where delivered_on > date '{{ bound }}' or source = 'guest'
    {%- for source, versions, key in [('crm', 'stg_crm__contact_versions', 'contact_id'),
                                      ('shop', 'stg_shop__customer_versions', 'customer_id')] %}
    union
    -- Records with a version delivered after the bound.
    select '{{ source }}', {{ key }} from {{ ref(versions) }}
    where delivered_on > date '{{ bound }}'
    union
    -- Records gone (erased): no version left.
    select previous.source, previous.source_id from {{ this }} as previous
    where
        previous.source = '{{ source }}'
        and not exists (
            select 1 from {{ ref(versions) }} as versions
            where versions.{{ key }} = previous.source_id)
    {%- endfor %}
),

{% endif -%}
contacts as (
    {{ latest_version(ref('stg_crm__contact_versions'), 'contact_id',
                      keys=none if bound is none else "select source_id from scope where source = 'crm'") }}
),

customers as (
    {{ latest_version(ref('stg_shop__customer_versions'), 'customer_id',
                      keys=none if bound is none else "select source_id from scope where source = 'shop'") }}
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
        created_at, updated_at, delivered_on
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
        created_at, updated_at, delivered_on
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
        created_at, updated_at,
        cast(null as date) as delivered_on
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
{{ changed_rows('final', ['source', 'source_id'], scope=(none if bound is none else 'scope'),
                stamped=true, added_column='delivered_on') }}

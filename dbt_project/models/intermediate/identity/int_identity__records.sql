-- One row per source record that identity resolution places: the person records (crm
-- contacts, shop accounts, guest-checkout emails: int_persons__records) and pixel cookies,
-- with the comparison fields they carry.
{{ changed_rows_config('record_key', 'source') }}
with person_records as (
    select * from {{ ref('int_persons__records') }}
),

cookie_keys as (
    select * from {{ ref('int_identity__cookie_keys') }}
),

nicknames as (
    select * from {{ ref('nicknames') }}
),

-- CRM contacts, shop accounts and guest-checkout emails (int_persons__records).
persons as (
    select
        source,
        source_id,
        email_normalized,
        email_sha256,
        first_name_clean,
        last_name_clean,
        phone_e164,
        street_clean,
        postcode_clean,
        city_clean,
        birth_date,
        updated_at
    from person_records
),

pixel as (
    select
        'pixel' as source,
        anonymous_id::string as source_id,
        null::string as email_normalized,
        null::string as email_sha256,
        null::string as first_name_clean,
        null::string as last_name_clean,
        null::string as phone_e164,
        null::string as street_clean,
        null::string as postcode_clean,
        null::string as city_clean,
        null::date as birth_date,
        max(last_occurred_at) as updated_at
    from cookie_keys
    group by anonymous_id
),

unioned as (
    select * from persons
    union all
    select * from pixel
),

final as (
    select
        unioned.source || ':' || unioned.source_id as record_key,
        unioned.source,
        unioned.source_id,
        unioned.email_normalized,
        split_part(unioned.email_normalized, '@', 1) as email_local_part,
        unioned.email_sha256,
        nullif(unioned.first_name_clean, '') as first_name_clean,
        nullif(unioned.last_name_clean, '') as last_name_clean,
        -- Nicknames compare as their full name (bob = robert).
        coalesce(nicknames.canonical_name, nullif(unioned.first_name_clean, '')) as first_name_canonical,
        nullif(unioned.phone_e164, '') as phone_e164,
        nullif(unioned.street_clean, '') as street_clean,
        nullif(unioned.postcode_clean, '') as postcode_clean,
        nullif(unioned.city_clean, '') as city_clean,
        unioned.birth_date,
        unioned.updated_at
    from unioned
    left join nicknames on unioned.first_name_clean = nicknames.nickname
)

-- Written as its changes (changed_rows.sql).
{{ changed_rows('final', 'record_key') }}

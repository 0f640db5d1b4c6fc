-- One row per source record that identity resolution places: the person records (crm
-- contacts, shop accounts, guest-checkout emails: int_persons__records) and pixel cookies,
-- with the comparison fields they carry. A cookie's row is its existence, no visit time
-- (`updated_at` null): nothing reads it, and a time would change every visiting cookie's
-- row every night (200k at 1M people) and with it the chain below.
-- Incremental from its inputs (docs/identity.md, "Identity that follows tonight's records"):
-- a night computes only the records whose inputs changed since this table was last written
-- (person records stamped since then, cookies new in the cookie keys since then, cookies no
-- longer in them, records gone) and keeps every other row. A changed nicknames seed needs a
-- --full-refresh.
{{ changed_rows_config('record_key', 'source', stamped=true) }}
{%- set since = changed_since() %}
with person_records as {{ not_materialized_cte() }} (
    select * from {{ ref('int_persons__records') }}
),

cookie_keys as {{ not_materialized_cte() }} (
    select * from {{ ref('int_identity__cookie_keys') }}
),

nicknames as (
    select * from {{ ref('nicknames') }}
),
{%- if since is not none %}

-- Cookies with rows appended since that have no row here yet.
new_cookies as (
    select distinct appended.anonymous_id
    from cookie_keys as appended
    anti join {{ this }} as previous
        on previous.source = 'pixel' and previous.source_id = appended.anonymous_id
    where appended.changed_at > timestamp '{{ since }}'
),

-- Cookies written with their last visit (before 2026-12-06): recomputed once, the night after.
timed_cookies as (
    select source_id as anonymous_id from {{ this }} where source = 'pixel' and updated_at is not null
),

-- The stored rows that may differ from tonight's, or are gone: compared or removed. (New
-- cookies and cookies with a visit time are computed too, below; they match no stored row.)
scope as (
    select source || ':' || source_id as record_key
    from person_records
    where changed_at > timestamp '{{ since }}'
    union
    -- A record gone: a person record erased or no longer a guest, a cookie whose deliveries
    -- retention or erasure removed.
    select previous.record_key
    from {{ this }} as previous
    anti join person_records
        on person_records.source = previous.source and person_records.source_id = previous.source_id
    where previous.source <> 'pixel'
    union
    select previous.record_key
    from {{ this }} as previous
    anti join cookie_keys on cookie_keys.anonymous_id = previous.source_id
    where previous.source = 'pixel'
),
{%- endif %}

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
    {%- if since is not none %}
    where exists (select 1 from scope where scope.record_key = person_records.source || ':' || person_records.source_id)
    {%- endif %}
),

-- Every cookie in the cookie keys, or the new ones and those with a visit time.
cookies as (
    {%- if since is none %}
    select distinct anonymous_id from cookie_keys
    {%- else %}
    select anonymous_id from new_cookies
    union
    select anonymous_id from cookie_keys semi join timed_cookies using (anonymous_id)
    {%- endif %}
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
        null::timestamp as updated_at
    from cookies
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
        unioned.updated_at,
        {{ changed_at_column() }}
    from unioned
    left join nicknames on unioned.first_name_clean = nicknames.nickname
)

-- Written as its changes (changed_rows.sql).
{{ changed_rows('final', 'record_key', scope=('scope' if since is not none else none), stamped=true) }}

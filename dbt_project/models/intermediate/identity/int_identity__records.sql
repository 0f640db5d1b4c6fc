-- One row per source record that identity resolution places: the person records (crm
-- contacts, shop accounts, guest-checkout emails: int_persons__records) and pixel cookies,
-- with the comparison fields they carry.
-- Incremental from its inputs (docs/identity.md, "Identity that follows tonight's records"):
-- a night computes only the records whose inputs changed since this table was last written
-- (person records and cookie keys stamped since then, cookies whose
-- last visit left the cookie keys, records gone) and keeps every other row. A cookie with
-- appended rows whose stored last visit is still there takes the newer of the two, without
-- reading its older rows. A changed nicknames seed needs a --full-refresh.
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

-- Cookies with rows appended since: their newest visit among those rows.
appended_visits as (
    select anonymous_id, max(last_occurred_at) as last_occurred_at
    from cookie_keys
    where changed_at > timestamp '{{ since }}'
    group by anonymous_id
),

-- Cookies whose stored last visit is no longer in the cookie keys (retention or erasure
-- removed its delivery's rows): their last visit moved back, or they are gone.
left_visits as (
    select previous.source_id as anonymous_id
    from {{ this }} as previous
    anti join cookie_keys
        on cookie_keys.anonymous_id = previous.source_id and cookie_keys.last_occurred_at = previous.updated_at
    where previous.source = 'pixel'
),

-- The records whose row may differ from the table's: nothing else is read further.
scope as (
    select source || ':' || source_id as record_key
    from person_records
    where changed_at > timestamp '{{ since }}'
    union
    select 'pixel:' || anonymous_id from appended_visits
    union
    select 'pixel:' || anonymous_id from left_visits
    union
    -- A person record gone (erased, or no longer a guest).
    select previous.record_key
    from {{ this }} as previous
    anti join person_records
        on person_records.source = previous.source and person_records.source_id = previous.source_id
    where previous.source <> 'pixel'
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

pixel_visits as (
    {%- if since is none %}
    select anonymous_id, max(last_occurred_at) as updated_at from cookie_keys group by anonymous_id
    {%- else %}
    -- A cookie whose last visit left: its newest remaining visit (none: it is gone).
    select anonymous_id, max(last_occurred_at) as updated_at
    from cookie_keys
    semi join left_visits using (anonymous_id)
    group by anonymous_id
    union all
    -- Any other cookie with appended rows: the stored last visit is still there, so its
    -- newest visit is the newer of that one and the appended ones (scanning only those).
    select appended_visits.anonymous_id, greatest(appended_visits.last_occurred_at, previous.updated_at)
    from appended_visits
    left join {{ this }} as previous on previous.record_key = 'pixel:' || appended_visits.anonymous_id
    anti join left_visits on left_visits.anonymous_id = appended_visits.anonymous_id
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
        updated_at
    from pixel_visits
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

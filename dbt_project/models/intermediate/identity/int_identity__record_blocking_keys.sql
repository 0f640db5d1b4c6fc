-- One row per (person record fingerprint, blocking rule, block key): the cache of blocking
-- keys. Incremental (an exception to the folder's tables): a night computes the keys of new
-- and changed records only; rows of fingerprints no longer current are ignored downstream
-- (int_identity__blocking_keys) and dropped by a full refresh. Each rule is a conjunction
-- of fields that a duplicate keeps when others are corrupted; phonetic codes (Soundex)
-- absorb most spelling typos, and rules without names find duplicates whose names both
-- changed.
-- Stamped (changed_at, changed_rows.sql): a fingerprint row not written after the newest
-- stamp of this version's rows was there when this cache last ran, so it is cached; only the
-- rows written since are looked up (without stamps of this version, e.g. before they existed
-- or after a cache version bump, every record is). The column is added in place.
{{ config(materialized='incremental', on_schema_change='append_new_columns') }}
{%- set since = newest_stamp(this, 'cache_version = ' ~ identity_cache_version()) if is_incremental() else none %}

with records as (
    select * from {{ ref('int_identity__record_fingerprints') }}
    {%- if since is not none %}
    where changed_at > timestamp '{{ since }}'
    {%- endif %}
),

-- Materialized (read three times below), as is `people`.
new_records as {{ materialized_cte() }} (
    select records.*
    from records
    {%- if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as cached
        where
            cached.record_key = records.record_key
            and cached.fingerprint = records.fingerprint
            and cached.cache_version = {{ identity_cache_version() }}
    )
    {%- endif %}
),

-- Soundex once per distinct name, first or last (at 1M records: 45k first, 136k last
-- names), joined back for both: its regular expressions cost 8x less than once per record.
-- Materialized: read twice.
name_codes as {{ materialized_cte() }} (
    select name, {{ identity_soundex('name') }} as code
    from (
        select first_name_canonical as name from new_records
        union
        select last_name_clean from new_records
    ) as distinct_names
),

-- Materialized: read once per rule.
people as {{ materialized_cte() }} (
    select
        new_records.record_key,
        new_records.fingerprint,
        new_records.first_name_canonical,
        new_records.last_name_clean,
        new_records.postcode_clean,
        new_records.street_clean,
        new_records.city_clean,
        new_records.birth_date,
        new_records.phone_e164,
        new_records.email_local_part,
        first_name_codes.code as first_name_soundex,
        last_name_codes.code as last_name_soundex
    from new_records
    left join name_codes as first_name_codes
        on new_records.first_name_canonical = first_name_codes.name
    left join name_codes as last_name_codes on new_records.last_name_clean = last_name_codes.name
),

-- Each name on its own row, so a swapped first/last name still meets its twin. `union`:
-- a record whose two names sound alike gives one row; no other rule can repeat a row (one
-- per record and rule), so the keys need no `distinct` over all of them.
names as (
    select record_key, fingerprint, first_name_soundex as name_soundex, postcode_clean,
        street_clean, city_clean, birth_date
    from people where first_name_soundex is not null
    union
    select record_key, fingerprint, last_name_soundex as name_soundex, postcode_clean,
        street_clean, city_clean, birth_date
    from people where last_name_soundex is not null
),

keys as (
    select record_key, fingerprint, 'name_birth_date' as blocking_rule,
        name_soundex || '|' || cast(birth_date as varchar(10)) as block_key
    from names where birth_date is not null
    union all
    select record_key, fingerprint, 'name_postcode', name_soundex || '|' || postcode_clean
    from names where postcode_clean is not null
    union all
    select record_key, fingerprint, 'name_street', name_soundex || '|' || street_clean
    from names where street_clean is not null
    union all
    -- Both names (sorted, so swapped names meet) in the same city: someone who moved.
    select record_key, fingerprint, 'full_name_city',
        least(first_name_soundex, last_name_soundex) || '|'
        || greatest(first_name_soundex, last_name_soundex) || '|' || city_clean
    from people
    where first_name_soundex is not null and last_name_soundex is not null and city_clean is not null
    union all
    select record_key, fingerprint, 'full_name_birth_year',
        least(first_name_soundex, last_name_soundex) || '|'
        || greatest(first_name_soundex, last_name_soundex) || '|' || cast(year(birth_date) as varchar(4))
    from people
    where first_name_soundex is not null and last_name_soundex is not null and birth_date is not null
    union all
    select record_key, fingerprint, 'address', postcode_clean || '|' || street_clean
    from people where postcode_clean is not null and street_clean is not null
    union all
    select record_key, fingerprint, 'birth_date_postcode',
        cast(birth_date as varchar(10)) || '|' || postcode_clean
    from people where birth_date is not null and postcode_clean is not null
    union all
    select record_key, fingerprint, 'birth_date_city', cast(birth_date as varchar(10)) || '|' || city_clean
    from people where birth_date is not null and city_clean is not null
    union all
    select record_key, fingerprint, 'phone', phone_e164
    from people where phone_e164 is not null
    union all
    -- The mailbox name at another provider.
    select record_key, fingerprint, 'email_local_part', email_local_part
    from people where length(email_local_part) >= 4
    union all
    -- ... or with another year suffix: the mailbox name without digits and punctuation.
    select record_key, fingerprint, 'email_stem', {{ identity_email_stem('email_local_part') }}
    from people where length({{ identity_email_stem('email_local_part') }}) >= 6
),

final as (
    select
        record_key,
        fingerprint,
        blocking_rule,
        block_key,
        {{ identity_cache_version() }} as cache_version,
        cast('{{ var("ds") }}' as date) as computed_on,
        {{ changed_at_column() }}
    from keys
)

select * from final

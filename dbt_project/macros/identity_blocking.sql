{#- The blocking keys of person records (docs/identity.md, "Blocking"): CTEs to place in a
    model's `with`, over `records` (a CTE or relation of int_identity__record_fingerprints
    rows), their names prefixed by `prefix`; `<prefix>keys` holds one row per (record_key,
    fingerprint, blocking_rule, block_key). The cache int_identity__record_blocking_keys keeps
    them per fingerprint; a night's int_identity__blocking_keys computes those of its few
    changed records here rather than look them up in the cache (a scan of every cached key).
    Each rule is a conjunction of fields that a duplicate keeps when others are corrupted;
    phonetic codes (Soundex) absorb most spelling typos, and rules without names find
    duplicates whose names both changed. -#}
{% macro identity_blocking_key_ctes(records, prefix='') %}
-- Soundex once per distinct name, first or last (at 1M records: 45k first, 136k last
-- names), joined back for both: its regular expressions cost 8x less than once per record.
-- Materialized: read twice.
{{ prefix }}name_codes as {{ materialized_cte() }} (
    select name, {{ identity_soundex('name') }} as code
    from (
        select first_name_canonical as name from {{ records }}
        union
        select last_name_clean from {{ records }}
    ) as distinct_names
),

-- Materialized: read once per rule.
{{ prefix }}people as {{ materialized_cte() }} (
    select
        {{ records }}.record_key,
        {{ records }}.fingerprint,
        {{ records }}.first_name_canonical,
        {{ records }}.last_name_clean,
        {{ records }}.postcode_clean,
        {{ records }}.street_clean,
        {{ records }}.city_clean,
        {{ records }}.birth_date,
        {{ records }}.phone_e164,
        {{ records }}.email_local_part,
        first_name_codes.code as first_name_soundex,
        last_name_codes.code as last_name_soundex
    from {{ records }}
    left join {{ prefix }}name_codes as first_name_codes
        on {{ records }}.first_name_canonical = first_name_codes.name
    left join {{ prefix }}name_codes as last_name_codes on {{ records }}.last_name_clean = last_name_codes.name
),

-- Each name on its own row, so a swapped first/last name still meets its twin. `union`:
-- a record whose two names sound alike gives one row; no other rule can repeat a row (one
-- per record and rule), so the keys need no `distinct` over all of them.
{{ prefix }}names as (
    select record_key, fingerprint, first_name_soundex as name_soundex, postcode_clean,
        street_clean, city_clean, birth_date
    from {{ prefix }}people where first_name_soundex is not null
    union
    select record_key, fingerprint, last_name_soundex as name_soundex, postcode_clean,
        street_clean, city_clean, birth_date
    from {{ prefix }}people where last_name_soundex is not null
),

{{ prefix }}keys as (
    select record_key, fingerprint, 'name_birth_date' as blocking_rule,
        name_soundex || '|' || cast(birth_date as varchar(10)) as block_key
    from {{ prefix }}names where birth_date is not null
    union all
    select record_key, fingerprint, 'name_postcode', name_soundex || '|' || postcode_clean
    from {{ prefix }}names where postcode_clean is not null
    union all
    select record_key, fingerprint, 'name_street', name_soundex || '|' || street_clean
    from {{ prefix }}names where street_clean is not null
    union all
    -- Both names (sorted, so swapped names meet) in the same city: someone who moved.
    select record_key, fingerprint, 'full_name_city',
        least(first_name_soundex, last_name_soundex) || '|'
        || greatest(first_name_soundex, last_name_soundex) || '|' || city_clean
    from {{ prefix }}people
    where first_name_soundex is not null and last_name_soundex is not null and city_clean is not null
    union all
    select record_key, fingerprint, 'full_name_birth_year',
        least(first_name_soundex, last_name_soundex) || '|'
        || greatest(first_name_soundex, last_name_soundex) || '|' || cast(year(birth_date) as varchar(4))
    from {{ prefix }}people
    where first_name_soundex is not null and last_name_soundex is not null and birth_date is not null
    union all
    select record_key, fingerprint, 'address', postcode_clean || '|' || street_clean
    from {{ prefix }}people where postcode_clean is not null and street_clean is not null
    union all
    select record_key, fingerprint, 'birth_date_postcode',
        cast(birth_date as varchar(10)) || '|' || postcode_clean
    from {{ prefix }}people where birth_date is not null and postcode_clean is not null
    union all
    select record_key, fingerprint, 'birth_date_city', cast(birth_date as varchar(10)) || '|' || city_clean
    from {{ prefix }}people where birth_date is not null and city_clean is not null
    union all
    select record_key, fingerprint, 'phone', phone_e164
    from {{ prefix }}people where phone_e164 is not null
    union all
    -- The mailbox name at another provider.
    select record_key, fingerprint, 'email_local_part', email_local_part
    from {{ prefix }}people where length(email_local_part) >= 4
    union all
    -- ... or with another year suffix: the mailbox name without digits and punctuation.
    select record_key, fingerprint, 'email_stem', {{ identity_email_stem('email_local_part') }}
    from {{ prefix }}people where length({{ identity_email_stem('email_local_part') }}) >= 6
)
{% endmacro %}

-- One row per (person record, blocking rule, block key), with the block's size. Person
-- records are crm/shop records with at least one name. Each rule is a conjunction of fields
-- that a duplicate keeps when others are corrupted; phonetic codes (Soundex) absorb most
-- spelling typos, and rules without names find duplicates whose names both changed.
with records as (
    select * from {{ ref('int_identity__guarded_records') }}
),

components as (
    select * from {{ ref('int_identity__deterministic_components') }}
),

people as (
    select
        records.record_key,
        components.component_id,
        records.first_name_canonical,
        records.last_name_clean,
        records.postcode_clean,
        records.street_clean,
        records.city_clean,
        records.birth_date,
        records.phone_e164,
        records.email_local_part,
        {{ identity_soundex('records.first_name_canonical') }} as first_name_soundex,
        {{ identity_soundex('records.last_name_clean') }} as last_name_soundex
    from records
    inner join components on records.record_key = components.record_key
    where
        records.source in ('crm', 'shop')
        and (records.first_name_clean is not null or records.last_name_clean is not null)
),

-- Each name on its own row, so a swapped first/last name still meets its twin.
names as (
    select record_key, component_id, first_name_soundex as name_soundex, postcode_clean,
        street_clean, city_clean, birth_date
    from people where first_name_soundex is not null
    union all
    select record_key, component_id, last_name_soundex as name_soundex, postcode_clean,
        street_clean, city_clean, birth_date
    from people where last_name_soundex is not null
),

keys as (
    select record_key, component_id, 'name_birth_date' as blocking_rule,
        name_soundex || '|' || cast(birth_date as varchar(10)) as block_key
    from names where birth_date is not null
    union all
    select record_key, component_id, 'name_postcode', name_soundex || '|' || postcode_clean
    from names where postcode_clean is not null
    union all
    select record_key, component_id, 'name_street', name_soundex || '|' || street_clean
    from names where street_clean is not null
    union all
    -- Both names (sorted, so swapped names meet) in the same city: someone who moved.
    select record_key, component_id, 'full_name_city',
        least(first_name_soundex, last_name_soundex) || '|'
        || greatest(first_name_soundex, last_name_soundex) || '|' || city_clean
    from people
    where first_name_soundex is not null and last_name_soundex is not null and city_clean is not null
    union all
    select record_key, component_id, 'full_name_birth_year',
        least(first_name_soundex, last_name_soundex) || '|'
        || greatest(first_name_soundex, last_name_soundex) || '|' || cast(year(birth_date) as varchar(4))
    from people
    where first_name_soundex is not null and last_name_soundex is not null and birth_date is not null
    union all
    select record_key, component_id, 'address', postcode_clean || '|' || street_clean
    from people where postcode_clean is not null and street_clean is not null
    union all
    select record_key, component_id, 'birth_date_postcode',
        cast(birth_date as varchar(10)) || '|' || postcode_clean
    from people where birth_date is not null and postcode_clean is not null
    union all
    select record_key, component_id, 'birth_date_city', cast(birth_date as varchar(10)) || '|' || city_clean
    from people where birth_date is not null and city_clean is not null
    union all
    select record_key, component_id, 'phone', phone_e164
    from people where phone_e164 is not null
    union all
    -- The mailbox name at another provider.
    select record_key, component_id, 'email_local_part', email_local_part
    from people where length(email_local_part) >= 4
    union all
    -- ... or with another year suffix: the mailbox name without digits and punctuation.
    select record_key, component_id, 'email_stem', {{ identity_email_stem('email_local_part') }}
    from people where length({{ identity_email_stem('email_local_part') }}) >= 6
),

final as (
    select distinct
        record_key,
        component_id,
        blocking_rule,
        block_key
    from keys
),

sized as (
    select
        *,
        count(*) over (partition by blocking_rule, block_key) as block_size
    from final
)

select * from sized

-- One row per pair of person records (crm/shop, with a first and last name) that share a
-- blocking key and are not already linked deterministically: the only pairs fuzzy matching
-- scores. Each record emits every name both ways round, so swapped first/last names still
-- meet. Blocks larger than var identity_max_block_size are skipped: they are keys like a
-- big-city postcode with a common surname whose pairs would cost more than they find.
{%- set max_block_size = var('identity_max_block_size', 50) %}

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
        records.postcode_clean,
        records.street_clean,
        records.birth_date,
        records.phone_e164,
        records.email_local_part,
        {{ identity_soundex('records.first_name_canonical') }} as first_name_soundex,
        {{ identity_soundex('records.last_name_clean') }} as last_name_soundex
    from records
    inner join components on records.record_key = components.record_key
    where
        records.source in ('crm', 'shop')
        and records.first_name_clean is not null
        and records.last_name_clean is not null
),

names as (
    select record_key, component_id, postcode_clean, street_clean, birth_date, phone_e164,
        email_local_part, first_name_soundex as name_soundex
    from people
    union all
    select record_key, component_id, postcode_clean, street_clean, birth_date, phone_e164,
        email_local_part, last_name_soundex as name_soundex
    from people
),

blocking_keys as (
    select distinct record_key, component_id, 'postcode_name|' || postcode_clean || '|' || name_soundex as block_key
    from names where postcode_clean is not null and name_soundex is not null
    union all
    select distinct record_key, component_id, 'street_name|' || street_clean || '|' || name_soundex
    from names where street_clean is not null and name_soundex is not null
    union all
    select distinct record_key, component_id, 'birth_name|' || birth_date::string || '|' || name_soundex
    from names where birth_date is not null and name_soundex is not null
    union all
    select record_key, component_id, 'phone|' || phone_e164
    from people where phone_e164 is not null
    union all
    -- The mailbox name without digits and punctuation (anna.schmidt85 -> annaschmidt):
    -- the same person at another provider, or with another year suffix.
    select distinct record_key, component_id, 'email_stem|' || {{ regexp_replace_all("email_local_part", '[^a-z]', '') }}
    from people where length({{ regexp_replace_all("email_local_part", '[^a-z]', '') }}) >= 6
),

sized_blocks as (
    select {{ star_except(['qualify_keep']) }} from (
        select record_key, component_id, block_key,
            (count(*) over (partition by block_key) between 2 and {{ max_block_size }}) as qualify_keep
        from blocking_keys
    ) as qualified
    where qualify_keep
),

final as (
    select distinct
        left_side.record_key as node_a,
        right_side.record_key as node_b
    from sized_blocks as left_side
    inner join sized_blocks as right_side
        on
            left_side.block_key = right_side.block_key
            and left_side.record_key < right_side.record_key
            and left_side.component_id <> right_side.component_id
)

select * from final

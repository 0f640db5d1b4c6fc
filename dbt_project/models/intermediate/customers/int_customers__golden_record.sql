-- Survivorship: one golden record per person from all their source records.
-- Rules (docs/warehouse.md "Survivorship"):
--   email      most recently updated record with a valid email, CRM before shop before guest
--   names      most frequent cleaned value, ties to the most recent; shown as last spelt
--   phone      most recent non-null E.164 phone
--   address    street/city/postcode/country together from the most recent record with a street
--   language, birth_date, gender: most recent non-null (CRM only carries them)
--   consent    latest CRM record stating email_opt_in decides; an unsubscribe after the
--              opt-in (or with no opt-in) wins
--   erasure    any record's email_sha256 in the erasure requests
with records as (
    select * from {{ ref('int_customers__source_records') }}
),

erasure_requests as (
    select * from {{ ref('stg_crm__erasure_requests') }}
),

persons as (
    select distinct unified_id from records
),

best_email as (
    select {{ star_except(['qualify_keep']) }} from (
        select unified_id, email, email_sha256,
            (row_number() over (
        partition by unified_id
        order by source_priority, updated_at desc nulls last, source_id
    ) = 1) as qualify_keep
        from records
    where is_email_valid
    ) as qualified
    where qualify_keep
),

first_name_counts as (
    select
        unified_id, first_name, updated_at, source_priority, source_id,
        count(*) over (partition by unified_id, first_name_clean) as frequency
    from records
    where first_name_clean is not null
),

first_names as (
    select {{ star_except(['qualify_keep']) }} from (
        select unified_id, first_name,
            (row_number() over (
        partition by unified_id
        order by frequency desc, updated_at desc nulls last, source_priority, source_id
    ) = 1) as qualify_keep
        from first_name_counts
    ) as qualified
    where qualify_keep
),

last_name_counts as (
    select
        unified_id, last_name, updated_at, source_priority, source_id,
        count(*) over (partition by unified_id, last_name_clean) as frequency
    from records
    where last_name_clean is not null
),

last_names as (
    select {{ star_except(['qualify_keep']) }} from (
        select unified_id, last_name,
            (row_number() over (
        partition by unified_id
        order by frequency desc, updated_at desc nulls last, source_priority, source_id
    ) = 1) as qualify_keep
        from last_name_counts
    ) as qualified
    where qualify_keep
),

phones as (
    select {{ star_except(['qualify_keep']) }} from (
        select unified_id, phone_e164 as phone,
            (row_number() over (
        partition by unified_id order by updated_at desc nulls last, source_priority, source_id
    ) = 1) as qualify_keep
        from records
    where phone_e164 is not null
    ) as qualified
    where qualify_keep
),

addresses as (
    select {{ star_except(['qualify_keep']) }} from (
        select unified_id, street, city, postcode, country,
            (row_number() over (
        partition by unified_id order by updated_at desc nulls last, source_priority, source_id
    ) = 1) as qualify_keep
        from records
    where street is not null
    ) as qualified
    where qualify_keep
),

countries as (
    select {{ star_except(['qualify_keep']) }} from (
        select unified_id, country,
            (row_number() over (
        partition by unified_id order by updated_at desc nulls last, source_priority, source_id
    ) = 1) as qualify_keep
        from records
    where country is not null
    ) as qualified
    where qualify_keep
),

languages as (
    select {{ star_except(['qualify_keep']) }} from (
        select unified_id, language,
            (row_number() over (
        partition by unified_id order by updated_at desc nulls last, source_id
    ) = 1) as qualify_keep
        from records
    where language is not null
    ) as qualified
    where qualify_keep
),

birth_dates as (
    select {{ star_except(['qualify_keep']) }} from (
        select unified_id, birth_date,
            (row_number() over (
        partition by unified_id order by updated_at desc nulls last, source_id
    ) = 1) as qualify_keep
        from records
    where birth_date is not null
    ) as qualified
    where qualify_keep
),

genders as (
    select {{ star_except(['qualify_keep']) }} from (
        select unified_id, gender,
            (row_number() over (
        partition by unified_id order by updated_at desc nulls last, source_id
    ) = 1) as qualify_keep
        from records
    where gender is not null
    ) as qualified
    where qualify_keep
),

latest_consent as (
    select {{ star_except(['qualify_keep']) }} from (
        select
        unified_id,
        is_opted_in as latest_opt_in,
        opted_in_at,
        coalesce(opted_in_at, updated_at) as consent_at,
        -- The consent audit trail: the CRM record whose statement decided.
        source_id as consent_source_id,
        updated_at as consent_recorded_at,
            (row_number() over (
        partition by unified_id order by updated_at desc nulls last, source_id
    ) = 1) as qualify_keep
        from records
    where source = 'crm' and is_opted_in is not null
    ) as qualified
    where qualify_keep
),

unsubscribes as (
    select unified_id, max(unsubscribed_at) as unsubscribed_at
    from records
    where source = 'crm' and unsubscribed_at is not null
    group by unified_id
),

consent as (
    select
        persons.unified_id,
        unsubscribes.unsubscribed_at,
        unsubscribes.unsubscribed_at is not null
        and (
            not coalesce(latest_consent.latest_opt_in, false)
            or latest_consent.consent_at is null
            or unsubscribes.unsubscribed_at >= latest_consent.consent_at
        ) as is_unsubscribed,
        latest_consent.latest_opt_in,
        latest_consent.opted_in_at,
        latest_consent.consent_source_id,
        latest_consent.consent_recorded_at
    from persons
    left join latest_consent using (unified_id)
    left join unsubscribes using (unified_id)
),

erased as (
    select distinct records.unified_id
    from records
    inner join erasure_requests using (email_sha256)
),

first_records as (
    select unified_id, min(created_at) as first_record_at
    from records
    group by unified_id
),

final as (
    select
        persons.unified_id,
        best_email.email,
        best_email.email_sha256,
        first_names.first_name,
        last_names.last_name,
        phones.phone,
        addresses.street,
        addresses.city,
        addresses.postcode,
        coalesce(addresses.country, countries.country) as country,
        languages.language,
        birth_dates.birth_date,
        genders.gender,
        coalesce(consent.latest_opt_in, false) and not consent.is_unsubscribed as is_opted_in,
        case
            when coalesce(consent.latest_opt_in, false) and not consent.is_unsubscribed
                then consent.opted_in_at
        end as opted_in_at,
        consent.is_unsubscribed,
        consent.unsubscribed_at,
        consent.consent_source_id,
        consent.consent_recorded_at,
        erased.unified_id is not null as is_erased,
        first_records.first_record_at
    from persons
    left join best_email using (unified_id)
    left join first_names using (unified_id)
    left join last_names using (unified_id)
    left join phones using (unified_id)
    left join addresses using (unified_id)
    left join countries using (unified_id)
    left join languages using (unified_id)
    left join birth_dates using (unified_id)
    left join genders using (unified_id)
    left join consent using (unified_id)
    left join erased using (unified_id)
    left join first_records using (unified_id)
)

select * from final

-- Survivorship: one golden record per person from all their source records.
-- Rules (docs/warehouse.md "Survivorship"; macro survivorship):
--   email      most recently updated record with a valid email, CRM before shop before guest;
--              never an address with an erasure request (held for review or carried out)
--   names      most frequent cleaned value, ties to the most recent; shown as last spelt
--   phone      most recent non-null E.164 phone
--   address    street/city/postcode/country together from the most recent record with a street
--              (country alone from the most recent record with one when no record has a street)
--   language, birth_date, gender: most recent non-null (CRM only carries them)
--   consent and erasure: int_customers__consent
-- Incremental (exception to the intermediate-as-tables rule): a person's row depends only on
-- their records and consent row, so a night recomputes only the persons whose fingerprint of
-- those changed (new or updated records, merges, splits, erasure) and keeps the others' rows
-- (macros/person_fingerprint.sql).
{{ person_fingerprint_config() }}
-- The records and consent rows are read where they are used (for every person's fingerprint,
-- then the changed persons' rows), not through CTEs read twice, which DuckDB would copy
-- whole (1.5M records at 1M people).

-- What a person's row is computed from: their records and their consent row.
with fingerprints as (
    select
        record_hashes.unified_id,
        {{ rows_fingerprint('record_hashes.row_hash') }} as input_fingerprint
    from (
        -- (its stamp, when the row was written, is no input)
        select unified_id, {{ row_hash('records', "'record'") }} as row_hash
        from (
            select {{ star_except(['changed_at']) }} from {{ ref('int_customers__source_records') }}
        ) as records
        union all
        select unified_id, {{ row_hash('consent', "'consent'") }}
        from {{ ref('int_customers__consent') }} as consent
    ) as record_hashes
    group by record_hashes.unified_id
),

changed_records as (
    select
        records.*,
        -- An address someone asked to erase never becomes the person's email, also while
        -- the request is held for review (consent.is_erasure_held changes the fingerprint).
        requested.email_sha256 is not null as is_email_requested
    from {{ ref('int_customers__source_records') }} as records
    left join (
        select distinct email_sha256 from {{ ref('int_customers__erasure_requests') }}
    ) as requested on records.email_sha256 = requested.email_sha256
    where records.unified_id in ({{ changed_persons('fingerprints') }})
),

survivors as (
    {{ survivorship('changed_records', [
        {'columns': {'email': 'email', 'email_sha256': 'email_sha256'},
         'when': 'is_email_valid and not is_email_requested', 'rule': 'preferred_source'},
        {'columns': {'first_name': 'first_name'}, 'when': 'first_name_clean is not null',
         'rule': 'most_frequent', 'frequency_of': 'first_name_clean'},
        {'columns': {'last_name': 'last_name'}, 'when': 'last_name_clean is not null',
         'rule': 'most_frequent', 'frequency_of': 'last_name_clean'},
        {'columns': {'phone': 'phone_e164'}, 'when': 'phone_e164 is not null'},
        {'columns': {'street': 'street', 'city': 'city', 'postcode': 'postcode',
                     'address_country': 'country'}, 'when': 'street is not null'},
        {'columns': {'any_country': 'country'}, 'when': 'country is not null'},
        {'columns': {'language': 'language'}, 'when': 'language is not null'},
        {'columns': {'birth_date': 'birth_date'}, 'when': 'birth_date is not null'},
        {'columns': {'gender': 'gender'}, 'when': 'gender is not null'},
    ]) }}
),

first_records as (
    select unified_id, min(created_at) as first_record_at
    from changed_records
    group by unified_id
),

final as (
    select
        survivors.unified_id,
        survivors.email,
        survivors.email_sha256,
        survivors.first_name,
        survivors.last_name,
        survivors.phone,
        survivors.street,
        survivors.city,
        survivors.postcode,
        coalesce(survivors.address_country, survivors.any_country) as country,
        survivors.language,
        survivors.birth_date,
        survivors.gender,
        coalesce(consent.is_opted_in, false) as is_opted_in,
        consent.opted_in_at,
        coalesce(consent.is_unsubscribed, false) as is_unsubscribed,
        consent.unsubscribed_at,
        consent.consent_source_id,
        consent.consent_recorded_at,
        coalesce(consent.is_erased, false) as is_erased,
        first_records.first_record_at,
        fingerprints.input_fingerprint
    from survivors
    inner join fingerprints on survivors.unified_id = fingerprints.unified_id
    left join {{ ref('int_customers__consent') }} as consent
        on survivors.unified_id = consent.unified_id
    left join first_records on survivors.unified_id = first_records.unified_id
)

select * from final
{{ gone_persons('fingerprints') }}

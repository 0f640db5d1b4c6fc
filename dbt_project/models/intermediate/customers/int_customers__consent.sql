-- Consent per person, from all their source records (docs/privacy.md):
--   opt-in       the latest CRM record that states email_opt_in decides (its audit trail:
--                consent_source_id, consent_recorded_at)
--   unsubscribe  the latest CRM unsubscribe wins over an opt-in stated at or before it, and
--                over no opt-in at all; a later opt-in re-subscribes
--   erased       any record's email hash has a right-to-erasure request that is carried out
--                (int_customers__erasure_requests: not one held for review)
--   erasure held any record's email hash has a request held for review: the golden record
--                leaves that address out
--   ESP feedback any record's email hash was reported by an ESP (unsubscribe, bounce,
--                complaint); the export suppresses the exported address itself
--                (export/consent.py), this flag shows it per person
-- The source records are read where they are used (five times), not through one CTE,
-- which DuckDB would copy whole (1.5M records at 1M people).
with erasure_requests as (
    select * from {{ ref('int_customers__erasure_requests') }}
),

esp_suppressions as (
    select * from {{ ref('stg_esp__suppressions') }}
),

statements as (
    {{ survivorship(ref('int_customers__source_records'), [
        {'columns': {
            'latest_opt_in': 'is_opted_in',
            'latest_opted_in_at': 'opted_in_at',
            'consent_at': 'coalesce(opted_in_at, updated_at)',
            'consent_source_id': 'source_id',
            'consent_recorded_at': 'updated_at'},
         'when': "source = 'crm' and is_opted_in is not null"},
    ]) }}
),

unsubscribes as (
    select unified_id, max(unsubscribed_at) as unsubscribed_at
    from {{ ref('int_customers__source_records') }}
    where source = 'crm' and unsubscribed_at is not null
    group by unified_id
),

erased as (
    select distinct records.unified_id
    from {{ ref('int_customers__source_records') }} as records
    inner join erasure_requests on records.email_sha256 = erasure_requests.email_sha256
    where erasure_requests.status = 'erase'
),

erasure_held as (
    select distinct records.unified_id
    from {{ ref('int_customers__source_records') }} as records
    inner join erasure_requests on records.email_sha256 = erasure_requests.email_sha256
    where erasure_requests.status = 'held_for_review'
),

esp_suppressed as (
    select distinct records.unified_id
    from {{ ref('int_customers__source_records') }} as records
    inner join esp_suppressions on records.email_sha256 = esp_suppressions.email_sha256
),

decided as (
    select
        statements.unified_id,
        coalesce(statements.latest_opt_in, false) as has_opt_in,
        statements.latest_opted_in_at,
        statements.consent_source_id,
        statements.consent_recorded_at,
        unsubscribes.unsubscribed_at,
        unsubscribes.unsubscribed_at is not null
        and (
            not coalesce(statements.latest_opt_in, false)
            or statements.consent_at is null
            or unsubscribes.unsubscribed_at >= statements.consent_at
        ) as is_unsubscribed,
        erased.unified_id is not null as is_erased,
        erasure_held.unified_id is not null as is_erasure_held,
        esp_suppressed.unified_id is not null as is_esp_suppressed
    from statements
    left join unsubscribes on statements.unified_id = unsubscribes.unified_id
    left join erased on statements.unified_id = erased.unified_id
    left join erasure_held on statements.unified_id = erasure_held.unified_id
    left join esp_suppressed on statements.unified_id = esp_suppressed.unified_id
),

final as (
    select
        unified_id,
        has_opt_in and not is_unsubscribed as is_opted_in,
        case when has_opt_in and not is_unsubscribed then latest_opted_in_at end as opted_in_at,
        is_unsubscribed,
        unsubscribed_at,
        consent_source_id,
        consent_recorded_at,
        is_erased,
        is_erasure_held,
        is_esp_suppressed
    from decided
)

select * from final

-- The consent audit trail: for every person, the CRM record (and its timestamp) whose
-- email_opt_in statement decided their consent, and the unsubscribe that may override it.
-- The export ships it for every exported contact; subject-access shows it.
-- A view over int_customers__consent (as customer_profiles): a table copied every person's
-- row every night. On Spark a table (served_view()).
{{ config(materialized=served_view()) }}

with consent as (
    select * from {{ ref('int_customers__consent') }}
),

final as (
    select
        unified_id,
        case when consent_source_id is not null then 'crm' end as consent_source,
        consent_source_id,
        consent_recorded_at,
        is_opted_in,
        opted_in_at,
        is_unsubscribed,
        unsubscribed_at
    from consent
)

select * from final

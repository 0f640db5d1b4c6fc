-- Every source record that carries personal data (int_persons__records: CRM contact, shop
-- account, guest checkout email) with the person it belongs to: the input of golden-record
-- survivorship.
with records as (
    select * from {{ ref('int_persons__records') }}
),

id_assignment as (
    select * from {{ ref('int_identity__id_assignment') }}
),

final as (
    select
        id_assignment.unified_id,
        records.source,
        records.source_id,
        records.source_priority,
        records.email,
        records.is_email_valid,
        records.email_sha256,
        records.first_name,
        records.first_name_clean,
        records.last_name,
        records.last_name_clean,
        records.phone_e164,
        records.street,
        records.city,
        records.postcode,
        records.country,
        records.language,
        records.birth_date,
        records.gender,
        records.is_opted_in,
        records.opted_in_at,
        records.unsubscribed_at,
        records.created_at,
        records.updated_at
    from records
    inner join id_assignment
        on records.source = id_assignment.source
        and records.source_id = id_assignment.source_id
)

select * from final

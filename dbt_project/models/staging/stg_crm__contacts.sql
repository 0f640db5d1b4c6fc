-- The latest version of each contact, from the versions kept normalised by
-- stg_crm__contact_versions (the same rule as when this view read every lake partition:
-- later updated_at, then later delivery, then later line; never a delivery after `ds`).
with latest as (
    {{ latest_version(ref('stg_crm__contact_versions'), 'contact_id') }}
),

final as (
    select {{ star_except(['line_number']) }} from latest
)

select * from final

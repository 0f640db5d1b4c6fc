-- The latest version of each shop account, from the versions kept normalised by
-- stg_shop__customer_versions (same rule as stg_crm__contacts).
with latest as (
    {{ latest_version(ref('stg_shop__customer_versions'), 'customer_id') }}
),

final as (
    select {{ star_except(['line_number']) }} from latest
)

select * from final

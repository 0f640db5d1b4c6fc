-- The latest version of each shop account, from the versions kept normalised by
-- stg_shop__customer_versions (same rule as stg_crm__contacts).
with versions as (
    select * from {{ ref('stg_shop__customer_versions') }}
    where delivered_on <= date '{{ var("ds") }}'
),

latest as (
    {{ latest_version('versions', 'customer_id') }}
),

final as (
    select {{ star_except(['line_number']) }} from latest
)

select * from final

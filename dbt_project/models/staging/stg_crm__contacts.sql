-- The latest version of each contact, from the versions kept normalised by
-- stg_crm__contact_versions (the same rule as when this view read every lake partition:
-- later updated_at, then later delivery, then later line; never a delivery after `ds`).
with versions as (
    select * from {{ ref('stg_crm__contact_versions') }}
    where delivered_on <= date '{{ var("ds") }}'
),

latest as (
    {{ latest_version('versions', 'contact_id') }}
),

final as (
    select {{ star_except(['line_number']) }} from latest
)

select * from final

-- One row per would-be person that grew above var identity_max_cluster_size records. It was
-- not merged: its records keep their deterministic-only components. Look here for junk
-- values the guards missed (docs/identity.md).
with clusters as (
    select * from {{ ref('int_identity__clusters') }}
),

final as (
    select
        merged_cluster_id as cluster_id,
        count(*) as record_count,
        count(distinct component_id) as deterministic_component_count,
        count(*) filter (where source = 'crm') as crm_records,
        count(*) filter (where source = 'shop') as shop_records,
        count(*) filter (where source = 'pixel') as pixel_records,
        count(*) filter (where source = 'guest') as guest_records,
        '{{ var("ds") }}'::date as detected_on
    from clusters
    where is_split_back
    group by merged_cluster_id
)

select * from final

-- One row per (previous_unified_id, unified_id) change in today's run: 'merge' when a
-- previous id was absorbed by the id its cluster kept, 'split' when records left their
-- previous id for another cluster. Empty on a rerun of the same ds.
with assignment as (
    select * from {{ ref('int_identity__id_assignment') }}
),

final as (
    select
        previous_unified_id,
        unified_id,
        case when is_previous_id_claimed_here then 'merge' else 'split' end as change_type,
        count(*) as record_count,
        '{{ var("ds") }}'::date as changed_on
    from assignment
    where previous_unified_id is not null and previous_unified_id <> unified_id
    group by all
)

select * from final

-- One row per absorbed unified_id: the id that survived and the run (ds) that merged them.
-- Appended nightly and never rebuilt (full_refresh=false): it is the only record of ids
-- that no longer exist. A rerun of the same ds finds no new merges, so it adds nothing.
{{ config(materialized='incremental', full_refresh=false, on_schema_change='fail') }}

with changes as (
    select * from {{ ref('int_identity__id_changes') }}
),

final as (
    select distinct
        previous_unified_id::string as absorbed_unified_id,
        unified_id::string as surviving_unified_id,
        changed_on::date as merged_on
    from changes
    where change_type = 'merge'
)

select * from final
{% if is_incremental() %}
    where absorbed_unified_id not in (select existing.absorbed_unified_id from {{ this }} as existing)
{% endif %}

-- One row per (original_unified_id, new_unified_id, split_on): records that left a person
-- because the evidence linking them disappeared (a changed record, a new guard). Appended
-- nightly, never rebuilt: like identity_merges it is history.
{{ config(materialized='incremental', full_refresh=false) }}

{#- Named identity_splits until issue 20: its first build carries that history over. -#}
{%- set legacy = adapter.get_relation(this.database, this.schema, 'identity_splits')
    if execute and not is_incremental() else none %}

with changes as (
    select * from {{ ref('int_identity__id_changes') }}
),

final as (
    select
        previous_unified_id as original_unified_id,
        unified_id as new_unified_id,
        changed_on as split_on,
        record_count
    from changes
    where change_type = 'split'
)

select * from final
{% if legacy is not none %}
union
select original_unified_id, new_unified_id, split_on, record_count from {{ legacy }}
{% endif %}
{% if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as existing
        where
            existing.original_unified_id = final.original_unified_id
            and existing.new_unified_id = final.new_unified_id
            and existing.split_on = final.split_on
    )
{% endif %}

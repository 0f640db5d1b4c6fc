-- One row per (person record, blocking rule, block key), with the block's size: person
-- records (crm/shop, at least one name), keys from the cache int_identity__record_blocking_keys
-- (a night's changed records: computed by its macro).
-- Incremental on DuckDB (an exception to the folder's tables; on Spark a table rebuilt whole):
-- a night rebuilds (delete+insert) only the blocks a changed record is or was in: new,
-- deleted, or another fingerprint, component or cache version than last night's state row.
-- An emptied block gets a placeholder row (no record_key), deleted by the post-hook with the
-- rows of a table built before state rows were kept. docs/identity.md.
-- depends_on: {{ ref('int_identity__record_blocking_keys') }} (read on a whole build only)
{{ config(
    materialized=keyed_incremental(),
    incremental_strategy='delete+insert',
    unique_key=['blocking_rule', 'block_key'],
    on_schema_change='sync_all_columns',
    post_hook="{% if is_incremental() %}delete from {{ this }} where record_key is null or is_record_state_row is null{% endif %}"
) }}
{%- set previous = previous_build_relation(this.identifier, 'is_record_state_row') if is_incremental() else none %}

with records as (
    select * from {{ ref('int_identity__record_fingerprints') }}
),

components as (
    select * from {{ ref('int_identity__deterministic_components') }}
),

current_records as (
    select
        records.record_key,
        records.fingerprint,
        components.component_id,
        {{ identity_cache_version() }} as cache_version
    from records
    inner join components on records.record_key = components.record_key
),
{%- if previous is not none %}

-- Last night's rows are read where used (a CTE read thrice: DuckDB copies all 13.5M at 1M).
-- One row per record carries its state (a scan, not a distinct over every key row).
previous_records as (
    select record_key, fingerprint, component_id, cache_version
    from {{ previous }} as previous_keys
    where is_record_state_row
),

-- New, deleted, or with another fingerprint, component or cache version than last night.
changed_records as (
    {{ identity_changed_records('current_records', 'previous_records',
                                ['fingerprint', 'component_id', 'cache_version']) }}
),

-- Their keys computed by the cache's macro: a look-up scans every cached key (13.5M at 1M).
changed_fingerprints as (
    select * from records
    where record_key in (select record_key from changed_records)
),

{{ identity_blocking_key_ctes('changed_fingerprints', 'changed_') }},
{%- else %}

cached_keys as (
    select * from {{ ref('int_identity__record_blocking_keys') }}
    where cache_version = {{ identity_cache_version() }}
),
{%- endif %}

record_keys as (
    select
        current_records.record_key,
        current_records.fingerprint,
        current_records.component_id,
        keys.blocking_rule,
        keys.block_key,
        row_number() over (
            partition by current_records.record_key order by keys.blocking_rule, keys.block_key
        ) = 1 as is_record_state_row
    from current_records
    inner join {{ 'changed_keys' if previous is not none else 'cached_keys' }} as keys
        on
            current_records.record_key = keys.record_key
            and current_records.fingerprint = keys.fingerprint
),
{%- if previous is not none %}

-- The blocks a changed record enters or leaves: only these are rebuilt.
affected_blocks as (
    select blocking_rule, block_key from record_keys
    union
    select blocking_rule, block_key from {{ previous }} as previous_keys
    where record_key in (select record_key from changed_records)
),

current_keys as (
    select * from record_keys
    union all
    -- Unchanged records in those blocks: last night's rows.
    select previous_keys.record_key, previous_keys.fingerprint, previous_keys.component_id,
        previous_keys.blocking_rule, previous_keys.block_key, previous_keys.is_record_state_row
    from {{ previous }} as previous_keys
    inner join affected_blocks
        on previous_keys.blocking_rule = affected_blocks.blocking_rule and previous_keys.block_key = affected_blocks.block_key
    where previous_keys.record_key not in (select record_key from changed_records)
),
{%- else %}

current_keys as (select * from record_keys),
{%- endif %}

-- A group-by joined back: a window over every key row (13.5M at 1M) cost twice the CPU.
block_sizes as (
    select blocking_rule, block_key, count(*) as block_size
    from current_keys
    group by blocking_rule, block_key
),

sized as (
    select
        current_keys.record_key, current_keys.component_id, current_keys.blocking_rule,
        current_keys.block_key, block_sizes.block_size, current_keys.fingerprint,
        {{ identity_cache_version() }} as cache_version,
        -- The night and the dbt run that last rebuilt this block (kept blocks keep theirs).
        cast('{{ var("ds") }}' as date) as sized_on,
        current_keys.is_record_state_row,
        {{ run_start() }} as sized_at
    from current_keys
    inner join block_sizes
        on current_keys.blocking_rule = block_sizes.blocking_rule and current_keys.block_key = block_sizes.block_key
),

final as (
    select * from sized
    {%- if previous is not none %}
    union all
    -- A block no record is in tonight: a placeholder, so delete+insert removes its old rows.
    select
        null as record_key, null as component_id, affected_blocks.blocking_rule,
        affected_blocks.block_key, 0 as block_size, null as fingerprint, null as cache_version,
        cast(null as date) as sized_on, false as is_record_state_row, cast(null as timestamp) as sized_at
    from affected_blocks
    where not exists (
        select 1 from current_keys
        where
            current_keys.blocking_rule = affected_blocks.blocking_rule
            and current_keys.block_key = affected_blocks.block_key
    )
    {%- endif %}
)

select * from final

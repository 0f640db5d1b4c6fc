-- One row per (record pair, blocking rule, block key) that put the two person records (crm/
-- shop with at least one name) in the same block, across different deterministic components.
-- Several rules are unioned so a duplicate with typos in some fields still shares a block
-- through the others; a block larger than var identity_max_block_size is skipped, which caps
-- every rule at max_block_size^2 / 2 pairs per key (int_identity__blocking_rules reports what
-- each rule costs and what it skipped). Names are taken both ways round (swapped first/last).
-- Incremental on DuckDB, keyed on the block (on Spark a table rebuilt whole): a block's pairs
-- depend only on its key rows, so a night recomputes the blocks int_identity__blocking_keys
-- rebuilt in later dbt runs than this model's last one (`sized_at` after the newest
-- `paired_at`: a run whose pairs failed after its keys were written is caught up, and the
-- first night after a full build recomputes only its own blocks), and every block an old pair of their
-- records or of a record without keys any more was in (an emptied block leaves no key row to
-- find it by). At 1M people: ≈ 70k of 2.2M blocks, instead of a self-join of 6.8M key rows.
-- A block left without pairs gets a placeholder row (no node_a), deleted by the post-hook
-- with the rows of a table built before the block key was kept (docs/identity.md).
{{ changed_rows_config(['blocking_rule', 'block_key'], ['node_a', 'paired_at'], append_columns=true) }}
{%- set max_block_size = var('identity_max_block_size', 50) %}
{%- set since = newest_stamp(this, column='paired_at') if is_incremental() else none %}
{%- if since is not none %}

-- Key rows of the blocks rebuilt by later runs than this model's last one.
with rebuilt_keys as (
    select record_key, blocking_rule, block_key
    from {{ ref('int_identity__blocking_keys') }}
    where sized_at > timestamp '{{ since }}'
),

-- Records with pairs here but no key rows any more (no name left, deleted, erased).
gone_records as (
    {{ identity_paired_records_missing(ref('int_identity__blocking_keys'), 'current_records.is_record_state_row') }}
),

touched_records as (
    select record_key from rebuilt_keys
    union
    select record_key from gone_records
),

affected_blocks as (
    select blocking_rule, block_key from rebuilt_keys
    union
    select held.blocking_rule, held.block_key
    from {{ this }} as held
    where
        held.node_a in (select record_key from touched_records)
        or held.node_b in (select record_key from touched_records)
),

sized_blocks as (
    select keys.record_key, keys.component_id, keys.blocking_rule, keys.block_key
    from {{ ref('int_identity__blocking_keys') }} as keys
    where
        keys.block_size between 2 and {{ max_block_size }}
        and exists (
            select 1 from affected_blocks
            where affected_blocks.blocking_rule = keys.blocking_rule and affected_blocks.block_key = keys.block_key
        )
),
{%- else %}

with sized_blocks as (
    select record_key, component_id, blocking_rule, block_key
    from {{ ref('int_identity__blocking_keys') }}
    where block_size between 2 and {{ max_block_size }}
),
{%- endif %}

pairs as (
    select distinct
        left_side.record_key as node_a,
        right_side.record_key as node_b,
        left_side.blocking_rule,
        left_side.block_key
    from sized_blocks as left_side
    inner join sized_blocks as right_side
        on
            left_side.blocking_rule = right_side.blocking_rule
            and left_side.block_key = right_side.block_key
            and left_side.record_key < right_side.record_key
            and left_side.component_id <> right_side.component_id
),

final as (
    select node_a, node_b, blocking_rule, block_key, {{ run_start() }} as paired_at
    from pairs
    {%- if since is not none %}
    union all
    -- An affected block without a pair tonight: a placeholder, so delete+insert removes its old rows.
    select
        null as node_a, null as node_b, affected_blocks.blocking_rule, affected_blocks.block_key,
        {{ run_start() }} as paired_at
    from affected_blocks
    where not exists (
        select 1 from pairs
        where pairs.blocking_rule = affected_blocks.blocking_rule and pairs.block_key = affected_blocks.block_key
    )
    {%- endif %}
)

select * from final

-- One row per (record pair, blocking rule) that put the two person records (crm/shop with at
-- least one name) in the same block, across different deterministic components. Several
-- rules are unioned so a duplicate with typos in some fields still shares a block through
-- the others; a block larger than var identity_max_block_size is skipped, which caps every
-- rule at max_block_size^2 / 2 pairs per key (int_identity__blocking_rules reports what each
-- rule costs and what it skipped). Names are taken both ways round (swapped first/last).
{%- set max_block_size = var('identity_max_block_size', 50) %}

with keys as (
    select * from {{ ref('int_identity__blocking_keys') }}
),

sized_blocks as (
    select record_key, component_id, blocking_rule, block_key
    from keys
    where block_size between 2 and {{ max_block_size }}
),

final as (
    select distinct
        left_side.record_key as node_a,
        right_side.record_key as node_b,
        left_side.blocking_rule
    from sized_blocks as left_side
    inner join sized_blocks as right_side
        on
            left_side.blocking_rule = right_side.blocking_rule
            and left_side.block_key = right_side.block_key
            and left_side.record_key < right_side.record_key
            and left_side.component_id <> right_side.component_id
)

select * from final

-- One row per blocking rule: what it costs (its candidate pairs), what it alone finds, and
-- what the block-size cap made it skip. A user reads this before adding or changing a rule.
{%- set max_block_size = var('identity_max_block_size', 50) %}

with keys as (
    select * from {{ ref('int_identity__blocking_keys') }}
),

blocked as (
    select * from {{ ref('int_identity__blocked_pairs') }}
),

candidates as (
    select * from {{ ref('int_identity__candidate_pairs') }}
),

-- Blocks counted without a distinct over every key row (13.5M at 1M people): a block's
-- rows carry its size, so each adds 1 / size and a block adds up to one.
blocks as (
    select
        blocking_rule,
        cast(round(sum(1.0 / block_size)) as bigint) as block_count,
        cast(round(coalesce(sum(case when block_size > {{ max_block_size }} then 1.0 / block_size end), 0))
            as bigint) as skipped_block_count,
        sum(case when block_size > {{ max_block_size }} then 1 else 0 end) as skipped_record_count
    from keys
    where block_size > 0
    group by blocking_rule
),

-- A pair counts once per rule, however many of the rule's blocks hold both records.
pairs as (
    select blocking_rule, count(*) as candidate_pair_count
    from (select distinct node_a, node_b, blocking_rule from blocked) as rule_pairs
    group by blocking_rule
),

only_rule as (
    select blocking_rule, count(*) as only_this_rule_pair_count
    from candidates
    where blocking_rule_count = 1
    group by blocking_rule
),

final as (
    select
        blocks.blocking_rule,
        blocks.block_count,
        blocks.skipped_block_count,
        blocks.skipped_record_count,
        coalesce(pairs.candidate_pair_count, 0) as candidate_pair_count,
        coalesce(only_rule.only_this_rule_pair_count, 0) as only_this_rule_pair_count
    from blocks
    left join pairs on blocks.blocking_rule = pairs.blocking_rule
    left join only_rule on blocks.blocking_rule = only_rule.blocking_rule
)

select * from final

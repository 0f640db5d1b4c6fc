-- One row per record pair that at least one blocking rule put together: the only pairs
-- fuzzy matching scores. `blocking_rule` is the first rule (alphabetically) that found it.
{{ changed_rows_config(['node_a', 'node_b'], 'blocking_rule') }}
with blocked as (
    select * from {{ ref('int_identity__blocked_pairs') }}
),

final as (
    select
        node_a,
        node_b,
        min(blocking_rule) as blocking_rule,
        -- distinct: a rule may pair the two records in more than one of its blocks
        count(distinct blocking_rule) as blocking_rule_count
    from blocked
    group by node_a, node_b
)

-- Written as its changes (changed_rows.sql).
{{ changed_rows('final', ['node_a', 'node_b']) }}

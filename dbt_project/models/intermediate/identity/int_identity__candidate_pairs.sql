-- One row per record pair that at least one blocking rule put together: the only pairs
-- fuzzy matching scores. `blocking_rule` is the first rule (alphabetically) that found it.
with blocked as (
    select * from {{ ref('int_identity__blocked_pairs') }}
),

final as (
    select
        node_a,
        node_b,
        min(blocking_rule) as blocking_rule,
        count(*) as blocking_rule_count
    from blocked
    group by node_a, node_b
)

select * from final

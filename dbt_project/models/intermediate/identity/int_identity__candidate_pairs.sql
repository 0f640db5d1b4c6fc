-- One row per record pair that at least one blocking rule put together: the only pairs
-- fuzzy matching scores. `blocking_rule` is the first rule (alphabetically) that found it.
-- Stamped and scoped (identity_pair_scope): a night regroups only the blocked pairs of records
-- whose blocks were rebuilt since this table was last written, or that are gone.
-- depends_on: {{ ref('int_identity__blocking_keys') }}
-- depends_on: {{ ref('int_identity__record_fingerprints') }}
-- depends_on: {{ ref('int_identity__model_schedule') }}
{{ changed_rows_config(['node_a', 'node_b'], 'blocking_rule', stamped=true) }}
{%- set since = identity_pair_since() %}
with blocked as {{ not_materialized_cte() }} (
    select * from {{ ref('int_identity__blocked_pairs') }}
),
{%- if since is not none %}

{{ identity_pair_scope(since, 'blocked', stamped=false) }},
{%- endif %}

final as (
    select
        node_a,
        node_b,
        min(blocking_rule) as blocking_rule,
        -- distinct: a rule may pair the two records in more than one of its blocks
        count(distinct blocking_rule) as blocking_rule_count,
        {{ changed_at_column() }}
    from {{ 'upstream_in_scope' if since is not none else 'blocked' }}
    group by node_a, node_b
)

-- Written as its changes (changed_rows.sql).
{{ changed_rows('final', ['node_a', 'node_b'], scope=('scope' if since is not none else none), stamped=true) }}

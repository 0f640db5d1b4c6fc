-- One row per record of tonight's clustering region (int_identity__cluster_region: every
-- record on a full build): its cluster after deterministic and fuzzy edges, before the size
-- guard. Conflict guard: a cluster that holds two records contradicting each other
-- (identity_cluster_conflicts: clearly different birth dates, or names that share nothing)
-- was chained through third records; it is rebuilt from its strong fuzzy edges only
-- (match weight >= the threshold's weight + var identity_conflict_margin), and if it still
-- holds a contradiction it falls back to its deterministic components.
{%- set max_cluster_size = var('identity_max_cluster_size', 50) %}
{%- set threshold = var('identity_match_threshold') %}
{%- set margin = var('identity_conflict_margin', 10) %}

{#- The CTEs before each connected-components call, kept as text: on Spark the macro
    iterates over temporary views made from them (identity_connected_components.sql). -#}
{%- set ctes_first %}
region as (
    select record_key from {{ ref('int_identity__cluster_region') }}
    where in_region
),

records as (
    select * from {{ ref('int_identity__guarded_records') }}
    where record_key in (select record_key from region)
),

components as (
    select * from {{ ref('int_identity__deterministic_components') }}
    where record_key in (select record_key from region)
),

-- The region is closed under the edges: an edge with one end in it has both.
fuzzy_edges as (
    select node_a, node_b, match_weight from {{ ref('int_identity__scored_pairs') }}
    where is_match and node_a in (select record_key from region)
),

component_nodes as (
    select distinct component_id as node from components
),

weighted_component_edges as (
    select
        component_a.component_id as node_a,
        component_b.component_id as node_b,
        max(fuzzy_edges.match_weight) as match_weight
    from fuzzy_edges
    inner join components as component_a on fuzzy_edges.node_a = component_a.record_key
    inner join components as component_b on fuzzy_edges.node_b = component_b.record_key
    group by component_a.component_id, component_b.component_id
),

first_edges as (
    select node_a, node_b from weighted_component_edges
)
{%- endset %}
{%- set ctes_second %}
{{ ctes_first }},

first_pass as (
    {{ identity_connected_components('component_nodes', 'first_edges', ctes_first) }}
),

first_assignment as (
    select components.record_key, components.component_id, first_pass.component_id as cluster_id
    from components
    inner join first_pass on components.component_id = first_pass.node
),

first_conflicts as (
    {{ identity_cluster_conflicts('first_assignment', 'records', 'fuzzy_edges', max_cluster_size) }}
),

-- Conflicted clusters keep only their strong edges.
second_edges as (
    select weighted_component_edges.node_a, weighted_component_edges.node_b
    from weighted_component_edges
    inner join first_pass on weighted_component_edges.node_a = first_pass.node
    left join first_conflicts on first_pass.component_id = first_conflicts.cluster_id
    where
        first_conflicts.cluster_id is null
        or weighted_component_edges.match_weight >= log(2, {{ threshold }} / (1 - {{ threshold }})) + {{ margin }}
)
{%- endset %}

with {{ ctes_second }},

second_pass as (
    {{ identity_connected_components('component_nodes', 'second_edges', ctes_second) }}
),

second_assignment as (
    select components.record_key, components.component_id, second_pass.component_id as cluster_id
    from components
    inner join second_pass on components.component_id = second_pass.node
),

second_conflicts as (
    {{ identity_cluster_conflicts('second_assignment', 'records', 'fuzzy_edges', max_cluster_size) }}
),

final as (
    select
        second_assignment.record_key,
        second_assignment.component_id,
        case when second_conflicts.cluster_id is null then second_assignment.cluster_id
            else second_assignment.component_id end as fuzzy_cluster_id,
        first_assignment.cluster_id in (select cluster_id from first_conflicts) as had_conflict,
        second_conflicts.cluster_id is not null as is_conflict_split_back
    from second_assignment
    inner join first_assignment on second_assignment.record_key = first_assignment.record_key
    left join second_conflicts on second_assignment.cluster_id = second_conflicts.cluster_id
)

select * from final

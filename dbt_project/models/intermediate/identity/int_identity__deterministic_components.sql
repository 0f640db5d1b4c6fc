-- One row per record: the component it falls in when only deterministic edges count
-- (component_id = smallest record key in it). Fuzzy matching compares across components only.
{{ changed_rows_config('record_key', 'component_id') }}
with records as (
    select record_key as node from {{ ref('int_identity__guarded_records') }}
),

edges as (
    select node_a, node_b from {{ ref('int_identity__deterministic_edges') }}
),

-- The macro gets relations, not CTE names: Spark iterates over them from Jinja.
components as (
    {{ identity_connected_components(
        "(select record_key as node from " ~ ref('int_identity__guarded_records') ~ ")",
        "(select node_a, node_b from " ~ ref('int_identity__deterministic_edges') ~ ")") }}
),

final as (
    select node as record_key, component_id from components
)

-- Written as its changes (changed_rows.sql).
{{ changed_rows('final', 'record_key') }}

-- One row per record: the component it falls in when only deterministic edges count
-- (component_id = smallest record key in it), and a signature of its deterministic edges.
-- Fuzzy matching compares across components only.
-- Incremental (docs/identity.md, "Incremental deterministic components"): a record whose edges
-- are last night's (same signature), in a component where every record's are and none left,
-- keeps its component; only the components holding a record with changed edges (new and
-- gone records included) are recomputed. Whole on a first build, --full-refresh and Spark.
{{ changed_rows_config('record_key', 'component_id', append_columns=true) }}
{%- set incremental = is_incremental() and 'edge_signature' in
    (adapter.get_columns_in_relation(this) | map(attribute='name') | list) %}
with records as (
    select record_key from {{ ref('int_identity__guarded_records') }}
),

edges as (
    select node_a, node_b from {{ ref('int_identity__deterministic_edges') }}
),

-- A record's incident edges as one number (an order-free sum of its neighbours' hashes and
-- their count): an edge that appears or vanishes changes the signature of both its ends.
signatures as (
    select
        records.record_key,
        hash(coalesce(sum(cast(hash(ends.other) as decimal(38, 0))), 0), count(ends.other))
            as edge_signature
    from records
    left join (
        select node_a as node, node_b as other from edges
        union all
        select node_b as node, node_a as other from edges
    ) as ends on records.record_key = ends.node
    group by records.record_key
),
{%- if incremental %}

previous as (
    select record_key, component_id, edge_signature from {{ this }}
),

-- Records with changed edges: new, gone, or another signature. One full join (a left join
-- and an anti join for the gone ones cost 0.55 CPU s more at 1M).
touched as (
    select coalesce(signatures.record_key, previous.record_key) as record_key
    from signatures
    full join previous on signatures.record_key = previous.record_key
    where signatures.record_key is null or previous.record_key is null
       or previous.edge_signature is distinct from signatures.edge_signature
),

-- The touched records and last night's components holding one. Closed under tonight's edges:
-- a new edge touches both its ends, and an old one lies inside one of last night's
-- components, so no edge leaves the region, and a component outside it has last night's
-- records and edges (docs/identity.md). Records gone are in it (the scope of changed_rows).
region as (
    select record_key from previous
    where component_id in (
        select component_id from previous
        where record_key in (select touched.record_key from touched))
    union
    select record_key from touched
),

region_nodes as (
    select record_key as node from region
    where record_key in (select signatures.record_key from signatures)
),

region_edges as (
    select edges.node_a, edges.node_b
    from edges
    inner join region as a on edges.node_a = a.record_key
    inner join region as b on edges.node_b = b.record_key
),

components as (
    {{ identity_connected_components('region_nodes', 'region_edges') }}
),
{%- else %}

-- The macro gets relations, not CTE names: Spark iterates over them from Jinja.
components as (
    {{ identity_connected_components(
        "(select record_key as node from " ~ ref('int_identity__guarded_records') ~ ")",
        "(select node_a, node_b from " ~ ref('int_identity__deterministic_edges') ~ ")") }}
),
{%- endif %}

final as (
    select signatures.record_key, components.component_id, signatures.edge_signature
    from signatures
    inner join components on signatures.record_key = components.node
)

-- Written as its changes (changed_rows.sql): compared in the region only, or every row; all
-- of them on the night that adds the signatures.
{%- if incremental %}
{{ changed_rows('final', 'record_key', scope='region') }}
{%- else %}
{{ changed_rows('final', 'record_key', added_column='edge_signature') }}
{%- endif %}

-- One row per record: its signature (its identity fields), whether tonight touched it, and
-- whether it is in tonight's clustering region, where alone clusters and ids are recomputed
-- (int_identity__clusters, int_identity__id_assignment). Touched: a new, deleted or changed
-- record (signature), or an end of an edge (deterministic, or fuzzy with its weight) that
-- changed since last night (int_identity__cluster_edges holds last night's). Region: the
-- touched records and their last-night cluster mates, closed under tonight's edges
-- (identity_region): whole components of tonight's graph before the guards, outside which a
-- full recomputation gives the same clusters (docs/identity.md). Every record is in it with
-- no state of last night (or edges older than the clusters), on a --full-refresh, a
-- re-estimated model, and on Spark. Only guarded records written after last night's
-- clusters (stamped) can have another signature: only theirs are compared; tonight's touched
-- and region records (and gone) recomputed. Last night's flags are reset in place first.
-- depends_on: {{ ref('int_identity__deterministic_edges') }} {{ ref('int_identity__scored_pairs') }}
-- depends_on: {{ ref('int_identity__model_schedule') }} (a --full-refresh parse skips identity_reestimate)
{{ changed_rows_config('record_key', 'record_signature') }}
{{ config(pre_hook="{{ identity_region_flags_reset() }}") }}
{%- set previous_clusters, previous_edges, since, edges_state = none, none, none, none %}
{%- if not flags.FULL_REFRESH and not identity_reestimate() %}
    {%- set clusters_relation = previous_build_relation('int_identity__clusters', 'record_signature') %}
    {%- set edges_relation = previous_build_relation('int_identity__cluster_edges', 'node_a') %}
    {%- if clusters_relation is not none and edges_relation is not none %}
        {#- Signatures as of the clusters' newest stamp; edges stored before it (a night
            stopped between them) are no baseline for tonight's: every record is in the region. #}
        {%- set since = newest_stamp(clusters_relation) if is_incremental() else none %}
        {%- set edges_state = identity_stored_edges_state(edges_relation, since) %}
        {%- set since = none if edges_state == 'behind' else since %}
        {%- if edges_state != 'behind' %}
            {%- set previous_clusters, previous_edges = clusters_relation, edges_relation %}
        {%- endif %}
    {%- endif %}
{%- endif %}

with records as {{ not_materialized_cte() }} (
    select * from {{ ref('int_identity__guarded_records') }}
),

signatures as (
    select
        record_key,
        {{ identity_record_signature('records') }} as record_signature
    from records
    {%- if since is not none %}
    where changed_at > timestamp '{{ since }}'
    {%- endif %}
),
{%- if previous_clusters is not none %}

tonight_edges as (
    {{ identity_cluster_edges() }}
),

previous_clusters as (
    select record_key, record_signature, cluster_id, merged_cluster_id from {{ previous_clusters }}
),

-- New, gone or reweighted edges: one join, not `except` both ways (half the CPU).
changed_edges as (
    select coalesce(tonight.node_a, previous.node_a) as node_a, coalesce(tonight.node_b, previous.node_b) as node_b
    from tonight_edges as tonight
    full join {{ previous_edges }} as previous
        on tonight.node_a = previous.node_a and tonight.node_b = previous.node_b and tonight.edge_kind = previous.edge_kind
    where tonight.node_a is null or previous.node_a is null or tonight.match_weight is distinct from previous.match_weight
),

changed_records as (
    {{ identity_changed_records('signatures', 'previous_clusters', ['record_signature'],
                                all_current=('records' if since is not none else none)) }}
),

touched as (
    select record_key from changed_records
    union
    select node_a from changed_edges
    union
    select node_b from changed_edges
),

touched_clusters as (
    select distinct previous_clusters.cluster_id, previous_clusters.merged_cluster_id
    from previous_clusters
    inner join touched on previous_clusters.record_key = touched.record_key
),

-- Last night's cluster mates of touched records (also through a would-be cluster that the
-- size guard split back), as far as they still exist.
seeds as (
    select touched.record_key from touched
    union
    select previous_clusters.record_key
    from previous_clusters
    where
        previous_clusters.cluster_id in (select cluster_id from touched_clusters)
        or previous_clusters.merged_cluster_id in (select merged_cluster_id from touched_clusters)
),

-- Edges that can link two of last night's clusters: fuzzy ones (the conflict guard refuses
-- some); a deterministic one stored with the clusters joins one component, which no cluster
-- splits, a new one touches both ends (seeds). Edges of unknown age all walk.
walk_edges as (
    select node_a, node_b from tonight_edges
    {%- if edges_state == 'current' %}
    where edge_kind = 'fuzzy'
    {%- endif %}
),

region as (
    {{ identity_region('seeds', 'previous_clusters', 'walk_edges') }}
),

{%- if since is not none %}

-- The rows that can differ from the table's (its flags reset): tonight's touched and region
-- records, records gone.
scope as (
    select record_key from touched
    union
    select record_key from region
    union
    {{ changed_rows_gone('records') }}
),
{%- endif %}

final as (
    select
        records.record_key,
        {{ identity_record_signature('records') }} as record_signature,
        touched.record_key is not null as is_touched,
        region.record_key is not null as in_region
    from records
    left join touched on records.record_key = touched.record_key
    left join region on records.record_key = region.record_key
    {%- if since is not none %}
    where exists (select 1 from scope where scope.record_key = records.record_key)
    {%- endif %}
)
{%- else %}

-- No state of last night to compare with (or a full refresh, or a re-estimated model):
-- every record is in the region.
final as (
    select record_key, record_signature, true as is_touched, true as in_region from signatures
)
{%- endif %}

-- Written as its changes (changed_rows.sql).
{%- if since is not none %}
{{ changed_rows('final', 'record_key', scope='scope') }}
{%- else %}
{{ changed_rows('final', 'record_key') }}
{%- endif %}

-- One row per record: its signature (its identity fields), whether tonight touched it, and
-- whether it is in tonight's clustering region. Clusters and ids are recomputed in the
-- region only; every other record keeps last night's cluster and id (int_identity__clusters,
-- int_identity__id_assignment). Touched: a new, deleted or changed record (signature), or an
-- end of an edge (deterministic, or fuzzy match with its weight) that appeared, vanished or
-- changed weight since last night (int_identity__cluster_edges holds last night's). Region:
-- the touched records and their last-night cluster mates, closed under tonight's edges, i.e.
-- whole components of tonight's graph before the guards: outside it nothing the clustering
-- reads changed, so a full recomputation gives the same clusters there (docs/identity.md).
-- Every record is in the region with no state of last night, on a --full-refresh, when the
-- stored model is re-estimated (every weight may change), and on Spark (no recursive walk).
-- Only guarded records written after last night's clusters (stamped, changed_rows.sql) can
-- have another signature: only theirs are compared, and only the rows of tonight's and last
-- night's touched and region records (and records gone) are recomputed.
-- depends_on: {{ ref('int_identity__deterministic_edges') }}
-- depends_on: {{ ref('int_identity__scored_pairs') }}
{{ changed_rows_config('record_key', 'record_signature') }}
{%- set previous_clusters, previous_edges, since = none, none, none %}
{%- if not flags.FULL_REFRESH and not identity_reestimate() %}
    {%- set clusters_relation = previous_build_relation('int_identity__clusters', 'record_signature') %}
    {%- set edges_relation = previous_build_relation('int_identity__cluster_edges', 'node_a') %}
    {%- if clusters_relation is not none and edges_relation is not none %}
        {%- set previous_clusters, previous_edges = clusters_relation, edges_relation %}
        {#- Last night's clusters hold the signatures the records had when the clusters were
            last written (their newest stamp); without stamps every signature is computed. #}
        {%- set since = newest_stamp(clusters_relation) if is_incremental() else none %}
    {%- endif %}
{%- endif %}

with records as (
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

changed_edges as (
    {%- set edge = 'select node_a, node_b, edge_kind, match_weight from ' %}
    ({{ edge }} tonight_edges except {{ edge }} {{ previous_edges }})
    union all
    ({{ edge }} {{ previous_edges }} except {{ edge }} tonight_edges)
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

both_ways as (
    select node_a as node, node_b as other from tonight_edges
    union all
    select node_b as node, node_a as other from tonight_edges
),

region as (
    with recursive reach (node) as (
        select seeds.record_key as node
        from seeds
        inner join records on seeds.record_key = records.record_key
        union
        select both_ways.other as node
        from reach
        inner join both_ways on reach.node = both_ways.node
    )

    select node as record_key from reach
),

{%- if since is not none %}

-- The rows that can differ from the table's: tonight's touched and region records, last
-- night's (their flags turn false), and records gone (a placeholder each).
scope as (
    select record_key from touched
    union
    select record_key from region
    union
    select record_key from {{ this }} where is_touched or in_region
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
{{ changed_rows('final', 'record_key', scope=('scope' if since is not none else none)) }}

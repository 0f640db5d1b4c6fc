-- One row per record: its cluster (a person) after deterministic and fuzzy edges (with the
-- conflict guard of int_identity__fuzzy_clusters), the rule that placed it and that rule's
-- score. A cluster above var identity_max_cluster_size is not trusted: it falls back to its
-- deterministic-only components (reported in int_identity__oversized_clusters).
-- Incremental: int_identity__fuzzy_clusters holds tonight's region
-- (int_identity__cluster_region); records outside it keep last night's row of this table.
-- Only the region's rows (and records gone) are computed and compared with the table; every
-- other row is last night's as it stands. Stamped (changed_at): the region reads the guarded
-- records written after this table's newest stamp (int_identity__cluster_region).
{{ changed_rows_config('record_key', 'source', stamped=true) }}
{%- set max_cluster_size = var('identity_max_cluster_size', 50) %}
{%- set previous = previous_build_relation(this.identifier, 'record_signature') %}
{#- Before the stamps (a table built without them) the first night computes every row, and
    writes them all once with their stamp (changed_rows.sql). #}
{%- set scoped = previous is not none and is_incremental()
                 and 'changed_at' in (adapter.get_columns_in_relation(previous) | map(attribute='name') | list) %}

with records as {{ not_materialized_cte() }} (
    select * from {{ ref('int_identity__guarded_records') }}
),

region as {{ not_materialized_cte() }} (
    select * from {{ ref('int_identity__cluster_region') }}
),

deterministic_edges as {{ not_materialized_cte() }} (
    select * from {{ ref('int_identity__deterministic_edges') }}
),

fuzzy_clusters as {{ not_materialized_cte() }} (
    select * from {{ ref('int_identity__fuzzy_clusters') }}
),

fuzzy_edges as (
    select * from {{ ref('int_identity__scored_pairs') }}
    where is_match
),
{%- if scoped %}

-- Tonight's region and last night's records gone: no other row can differ from the table's.
scope as (
    select record_key from region where in_region
    union all
    {{ changed_rows_gone('region') }}
),
{%- endif %}

candidate_clusters as (
    select
        record_key,
        component_id,
        fuzzy_cluster_id as merged_cluster_id,
        count(*) over (partition by fuzzy_cluster_id) as merged_size
    from fuzzy_clusters
),

clustered as (
    select
        record_key,
        component_id,
        merged_cluster_id,
        merged_size,
        merged_size > {{ max_cluster_size }} as is_split_back,
        case when merged_size > {{ max_cluster_size }} then component_id else merged_cluster_id end as cluster_id
    from candidate_clusters
),

incident_edges as (
    select node_a as record_key, node_b as other_key, match_rule, 1.0::double as match_score
    from deterministic_edges
    union all
    select node_b, node_a, match_rule, 1.0::double from deterministic_edges
    union all
    select node_a, node_b, 'fuzzy', match_probability from fuzzy_edges
    union all
    select node_b, node_a, 'fuzzy', match_probability from fuzzy_edges
),

-- The strongest edge that holds a record in its cluster: deterministic beats fuzzy.
record_rules as (
    select {{ star_except(['qualify_keep']) }} from (
        select
        incident_edges.record_key,
        incident_edges.match_rule,
        incident_edges.match_score,
            (row_number() over (
        partition by incident_edges.record_key
        order by
            incident_edges.match_rule = 'fuzzy',
            incident_edges.match_score desc,
            case incident_edges.match_rule
                when 'email' then 1 when 'cookie_login' then 2 when 'cookie_order' then 3
                when 'email_hash' then 4 else 5
            end
    ) = 1) as qualify_keep
        from incident_edges
    inner join clustered as self_side on incident_edges.record_key = self_side.record_key
    inner join clustered as other_side on incident_edges.other_key = other_side.record_key
    where self_side.cluster_id = other_side.cluster_id
    ) as qualified
    where qualify_keep
),

final as (
    select
        records.record_key,
        records.source,
        records.source_id,
        clustered.component_id,
        clustered.cluster_id,
        clustered.merged_cluster_id,
        clustered.merged_size,
        clustered.is_split_back,
        coalesce(record_rules.match_rule, 'unmatched') as match_rule,
        record_rules.match_score,
        region.record_signature,
        {{ changed_at_column() }}
    from records
    inner join clustered on records.record_key = clustered.record_key
    inner join region on records.record_key = region.record_key
    left join record_rules on records.record_key = record_rules.record_key
    {%- if previous is not none and not scoped %}
    union all
    -- Outside tonight's region: last night's row.
    select
        kept.record_key,
        kept.source,
        kept.source_id,
        kept.component_id,
        kept.cluster_id,
        kept.merged_cluster_id,
        kept.merged_size,
        kept.is_split_back,
        kept.match_rule,
        kept.match_score,
        kept.record_signature,
        {{ changed_at_column() }}
    from {{ previous }} as kept
    inner join region on kept.record_key = region.record_key
    where not region.in_region
    {%- endif %}
)

-- Written as its changes (changed_rows.sql).
{{ changed_rows('final', 'record_key', scope=('scope' if scoped else none), stamped=true) }}

-- One row per record: the unified_id it gets today, and the one it had in the previous
-- identity_map (read back from the warehouse; from this table, which the map publishes, in a
-- build that never made the map, e.g. `--select +customer_profiles`; null on a first build).
-- Rules (docs/identity.md): a previous id goes to the cluster that holds most of its records
-- (its "claim"); a cluster keeps, among the ids it claims, the one with most records (then
-- the smallest); the others are absorbed (identity_merges). A cluster that claims nothing
-- gets 'u_' || first 16 hex of {{ sha256_hex("its smallest record key") }}, so a rebuild from scratch
-- gives the same ids; if that id was ever used, the run date is mixed in.
-- A night computes only the rows that can differ from the table's (identity_id_scope), or every
-- record after a night that stopped inside the chain (docs/identity.md, "Ids that follow the region").
-- depends_on: {{ ref('int_identity__cluster_edges') }} (tonight's edges, stored after the clusters)
{{ changed_rows_config('record_key', 'unified_id', stamped=true) }}
{{ config(pre_hook="{{ identity_id_transitions_reset() }}") }}
{%- set published_map = adapter.get_relation(this.database, this.schema, 'identity_map') if execute else none %}
{%- set previous_map = published_map or (load_relation(this) if execute else none) %}
{%- set previous_merges = adapter.get_relation(this.database, this.schema, 'identity_merges') if execute else none %}
{%- set since = changed_since() %}
{%- set previous_night_stopped = is_incremental() and identity_previous_night_stopped(published_map, since) %}
{%- set scoped = since is not none and not previous_night_stopped %}

with all_clusters as (
    select * from {{ ref('int_identity__clusters') }}
),

region as (
    select * from {{ ref('int_identity__cluster_region') }}
),

-- (Empty on a first build.)
previous_map as (
    select source, source_id, unified_id from {{ previous_map if previous_map is not none else
        '(select null::string as source, null::string as source_id, null::string as unified_id where false) as no_map' }}
),

absorbed_ids as (
    select absorbed_unified_id as unified_id from {{ previous_merges if previous_merges is not none else
        '(select null::string as absorbed_unified_id where false) as no_merges' }}
),

{%- if scoped %}

scope as ({{ identity_id_scope('region') }}),
{%- endif %}

all_with_previous as (
    select all_clusters.*, previous_map.unified_id as previous_unified_id,
        {{ 'true' if previous_night_stopped else 'region.in_region' }} as in_region
    from all_clusters
    inner join region on all_clusters.record_key = region.record_key
    left join previous_map
        on all_clusters.source = previous_map.source and all_clusters.source_id = previous_map.source_id
    {%- if scoped %}
    where exists (select 1 from scope where scope.record_key = all_clusters.record_key)
    {%- endif %}
),

-- Outside tonight's region (int_identity__cluster_region) a cluster is last night's: it keeps its id.
kept as (
    select * from all_with_previous
    where not in_region and previous_unified_id is not null
),

with_previous as (
    select * from all_with_previous
    where in_region or previous_unified_id is null
),

cluster_previous_ids as (
    select cluster_id, previous_unified_id, count(*) as record_count
    from with_previous
    where previous_unified_id is not null
    group by cluster_id, previous_unified_id
),

claims as (
    select {{ star_except(['qualify_keep']) }} from (
        select cluster_id, previous_unified_id, record_count,
            row_number() over (partition by previous_unified_id order by record_count desc, cluster_id) = 1
                as qualify_keep
        from cluster_previous_ids
    ) as qualified
    where qualify_keep
),

survivors as (
    select {{ star_except(['qualify_keep']) }} from (
        select cluster_id, previous_unified_id as unified_id,
            row_number() over (partition by cluster_id order by record_count desc, previous_unified_id) = 1
                as qualify_keep
        from claims
    ) as qualified
    where qualify_keep
),

used_ids as (
    select unified_id from previous_map
    union
    select unified_id from absorbed_ids
),

new_clusters as (
    select distinct with_previous.cluster_id
    from with_previous
    left join survivors on with_previous.cluster_id = survivors.cluster_id
    where survivors.cluster_id is null
),

fresh_ids as (
    select
        new_clusters.cluster_id,
        case
            when used_ids.unified_id is null then 'u_' || left({{ sha256_hex("new_clusters.cluster_id") }}, 16)
            else 'u_' || left({{ sha256_hex("new_clusters.cluster_id || '@" ~ var("ds") ~ "'") }}, 16)
        end as unified_id
    from new_clusters
    left join used_ids on 'u_' || left({{ sha256_hex("new_clusters.cluster_id") }}, 16) = used_ids.unified_id
),

cluster_ids as (
    select cluster_id, unified_id, false as is_new from survivors
    union all
    select cluster_id, unified_id, true as is_new from fresh_ids
),

final as (
    select
        with_previous.record_key, with_previous.source, with_previous.source_id, cluster_ids.unified_id,
        with_previous.match_rule, with_previous.match_score, with_previous.cluster_id,
        cluster_ids.is_new as is_new_unified_id, with_previous.previous_unified_id,
        -- Was the record's previous id handed to this cluster? If not, the record split off.
        claims.cluster_id is not null as is_previous_id_claimed_here,
        {{ changed_at_column() }}
    from with_previous
    inner join cluster_ids on with_previous.cluster_id = cluster_ids.cluster_id
    left join claims
        on
            with_previous.previous_unified_id = claims.previous_unified_id
            and with_previous.cluster_id = claims.cluster_id
    union all
    select
        record_key, source, source_id, previous_unified_id as unified_id, match_rule, match_score, cluster_id,
        false as is_new_unified_id, previous_unified_id, true as is_previous_id_claimed_here,
        {{ changed_at_column() }}
    from kept
)

-- Written as its changes (changed_rows.sql).
{{ changed_rows('final', 'record_key', scope=('scope' if scoped else none), stamped=true) }}

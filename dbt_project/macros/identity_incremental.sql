{#-
    Helpers of incremental identity (docs/identity.md, "Incremental nights").

    The costly work of fuzzy matching is per record (blocking keys: Soundex codes) and per
    record pair (string similarities). Both depend only on the records' comparison fields,
    so they are kept in two incremental caches keyed by the records' fingerprints
    (int_identity__record_blocking_keys, int_identity__compared_pairs): a night computes
    them only for new or changed records and the pairs those records form. What is learned
    (u, m, prior, term frequencies) is a stored model, re-estimated on a schedule; the other
    tables recompute what tonight's records can change (stamps, scopes and regions below), so
    a night gives exactly what a full rebuild with the same model gives.
-#}

{#- Bump when the comparison levels or the blocking rules change: cached rows of an older
    version are then ignored and recomputed (a --full-refresh does the same). -#}
{% macro identity_cache_version() %}'v3'{% endmacro %}

{#- The record fields that blocking keys and comparison levels read. -#}
{% macro identity_comparison_fields() %}
    {{ return(['first_name_canonical', 'last_name_clean', 'birth_date', 'street_clean',
               'postcode_clean', 'city_clean', 'phone_e164', 'email_local_part']) }}
{% endmacro %}

{#- A fingerprint of a record's comparison fields: equal fingerprints, equal comparisons.
    Nulls and empty strings hash differently. -#}
{% macro identity_record_fingerprint(alias) -%}
    md5(
    {%- for field in identity_comparison_fields() %}
        case when {{ alias }}.{{ field }} is null then '0' else '1' || cast({{ alias }}.{{ field }} as varchar(200)) end
        {%- if not loop.last %} || '|' ||{% endif %}
    {%- endfor %}
    )
{%- endmacro %}

{#- A pseudo-random bucket in [0, buckets) of a string, stable from run to run. -#}
{% macro identity_hash_bucket(expr, buckets) %}
    {{ return(adapter.dispatch('identity_hash_bucket', 'personalization')(expr, buckets)) }}
{% endmacro %}

{% macro default__identity_hash_bucket(expr, buckets) -%}
    pmod(hash({{ expr }}), {{ buckets }})
{%- endmacro %}

{% macro duckdb__identity_hash_bucket(expr, buckets) -%}
    (hash({{ expr }}) % cast({{ buckets }} as ubigint))
{%- endmacro %}

{#- Pairs of `relation` grouped by their vector of comparison levels: one row per pattern
    with its pair count (what EM and the u estimate count over). -#}
{% macro identity_count_patterns(relation) %}
    select
        {%- for comparison in identity_comparison_names() %}
        {{ comparison }}_level,
        {%- endfor %}
        count(*) as pair_count
    from {{ relation }}
    group by
        {%- for comparison in identity_comparison_names() %}
        {{ comparison }}_level{% if not loop.last %},{% endif %}
        {%- endfor %}
{% endmacro %}

{#- The stored identity model (docs/identity.md, "The stored identity model"): u, m, the
    prior and the term frequencies are estimated on a schedule, not every night. True when
    this run re-estimates them: the decision of int_identity__model_schedule (a full refresh,
    no stored model, a forced var identity_reestimate, the model's age or the population's
    growth). Read at execution time; at parse time (no data yet) it is true, which only
    registers the dependency. -#}
{% macro identity_reestimate() %}
    {%- set schedule = ref('int_identity__model_schedule') %}
    {%- if not execute %}{{ return(true) }}{% endif %}
    {%- set built = adapter.get_relation(database=schedule.database, schema=schedule.schema,
                                         identifier=schedule.identifier) %}
    {#- Compiled without a build (dbt compile, the SQL lint): as a re-estimating run. -#}
    {%- if built is none %}{{ return(true) }}{% endif %}
    {%- set result = run_query('select reestimate from ' ~ schedule) %}
    {{ return(result.columns[0].values()[0] == true) }}
{% endmacro %}

{#- The rows of a kept stored-model table: the table as it is. A table estimated before
    `estimated_at` (the dbt run that estimated it) was kept gets the epoch: the pair tables
    stamped after it (identity_pair_since) were computed with it, since they first computed
    whole. -#}
{% macro identity_stored_rows() %}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list if execute else [] %}
    with stored as (
        select * from {{ this }}
    )

    select
        *{% if execute and 'estimated_at' not in columns %},
        cast('1970-01-01' as timestamp) as estimated_at{% endif %}
    from stored
{% endmacro %}

{#- The run stamp of a stored-model table's estimate. -#}
{% macro identity_estimated_at_column() -%}
    {{ run_start() }} as estimated_at
{%- endmacro %}

{% macro identity_keep_stored_model() %}
    {%- set reestimate = identity_reestimate() %}
    {%- if not execute %}{{ return(false) }}{% endif %}
    {%- set existing = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) %}
    {{ return(existing is not none and not reestimate) }}
{% endmacro %}

{#- Pair tables that follow tonight's records (docs/identity.md, "Pairs that follow tonight's
    records"): the candidate pairs, their comparisons and their scores are stamped tables
    (changed_rows.sql) that recompute only the pairs identity_pair_scope holds. The stamp
    after which this table's pairs are recomputed, or none to compute whole: no stamp yet, a
    full refresh or a run that re-estimates the stored model, or a stored model (`stored_model`,
    the table its rows are computed with) estimated after this table was last written (its
    pairs stopped that night). The model must ref `stored_model` itself. -#}
{% macro identity_pair_since(stored_model=none) %}
    {%- set since = changed_since() %}
    {%- if since is none or identity_reestimate() %}{{ return(none) }}{% endif %}
    {%- if stored_model is not none %}
        {%- set estimated = newest_stamp(ref(stored_model), column='estimated_at') %}
        {%- if estimated is none %}{{ return(none) }}{% endif %}
        {%- set later = run_query("select timestamp '" ~ estimated ~ "' > timestamp '" ~ since ~ "'") %}
        {%- if later.columns[0].values()[0] %}{{ return(none) }}{% endif %}
    {%- endif %}
    {{ return(since) }}
{% endmacro %}

{#- The CTEs of a scoped pair table: `touched_records`; `upstream_in_scope`, the rows of
    `upstream` (its input pairs) that identity_pair_in_scope holds, which the table recomputes
    (filtered once, read twice); and `scope`, those pairs and the pairs this table holds of
    records in `touched_records`. -#}
{% macro identity_pair_scope(since, upstream, stamped=true) -%}
touched_records as (
    {{ identity_rebuilt_block_records(since) }}
    union
    {{ identity_paired_records_missing(ref('int_identity__record_fingerprints')) }}
),

upstream_in_scope as {{ materialized_cte() }} (
    select * from {{ upstream }}
    where {{ identity_pair_in_scope(since, stamped) }}
),

scope as (
    select node_a, node_b from {{ this }}
    where {{ identity_pair_in_scope(since, stamped=false) }}
    union
    select node_a, node_b from upstream_in_scope
)
{%- endmacro %}

{#- The records of this pair table's pairs that `current` (keyed by record_key; its rows
    matching `where`) no longer holds. -#}
{% macro identity_paired_records_missing(current, where='true') -%}
    select held.record_key
    from (
        select node_a as record_key from {{ this }}
        union
        select node_b from {{ this }}
    ) as held
    where not exists (
        select 1 from {{ current }} as current_records
        where {{ where }} and current_records.record_key = held.record_key
    )
{%- endmacro %}

{#- The records of the blocks int_identity__blocking_keys rebuilt since `since`. -#}
{% macro identity_rebuilt_block_records(since) -%}
    select record_key from {{ ref('int_identity__blocking_keys') }}
    where sized_at > timestamp '{{ since }}'
{%- endmacro %}

{#- A pair a scoped pair table recomputes: a record of it is in `touched_records`, i.e. its
    blocks were rebuilt since `since` (int_identity__blocking_keys restamps every record of a
    block that a changed record enters or leaves, or whose size crosses the cap: only then can
    a pair's blocks change, and a changed fingerprint changes the record's blocks), or it is no
    longer a person record (two such records may share no rebuilt block); or, `stamped`, its
    input row was written since (a stamped input recomputed whole, e.g. the comparisons after
    new term frequencies). The model must depend on int_identity__blocking_keys and
    int_identity__record_fingerprints (`-- depends_on:`). -#}
{% macro identity_pair_in_scope(since, stamped=true) -%}
    (
        node_a in (select record_key from touched_records)
        or node_b in (select record_key from touched_records)
        {%- if stamped %}
        or changed_at > timestamp '{{ since }}'
        {%- endif %}
    )
{%- endmacro %}

{#- Incremental clustering (docs/identity.md): the edges clustering reads — deterministic
    links, and accepted fuzzy matches with the weight the conflict guard reads — as
    (node_a, node_b, edge_kind, match_weight). -#}
{% macro identity_cluster_edges() %}
    select node_a, node_b, match_rule as edge_kind, cast(null as double) as match_weight
    from {{ ref('int_identity__deterministic_edges') }}
    union all
    select node_a, node_b, 'fuzzy' as edge_kind, match_weight
    from {{ ref('int_identity__scored_pairs') }}
    where is_match
{% endmacro %}

{#- A signature of a guarded record: every field the clustering reads (a changed signature
    touches the record's cluster). -#}
{% macro identity_record_signature(alias) -%}
    md5(
        {{ alias }}.source || '|' || {{ alias }}.source_id
    {%- for field in ['email_normalized', 'email_sha256', 'first_name_clean', 'last_name_clean',
                      'first_name_canonical', 'phone_e164', 'street_clean', 'postcode_clean',
                      'city_clean', 'birth_date'] %}
        || '|' || case when {{ alias }}.{{ field }} is null then '0' else '1' || cast({{ alias }}.{{ field }} as varchar(200)) end
    {%- endfor %}
    )
{%- endmacro %}

{#- The record keys that are new, deleted or changed between `current` and `previous` (CTEs
    or relations keyed by record_key): any of `columns` differs, a missing side included.
    With `all_current` (every current record), `current` holds only the records that may have
    changed (those written since `previous`): changed or new among them, or gone. -#}
{% macro identity_changed_records(current, previous, columns, all_current=none) %}
    {%- if all_current is not none %}
    select {{ current }}.record_key
    from {{ current }}
    left join {{ previous }} on {{ current }}.record_key = {{ previous }}.record_key
    where
    {%- for column in columns %}
        {{ current }}.{{ column }} is distinct from {{ previous }}.{{ column }}{% if not loop.last %} or{% endif %}
    {%- endfor %}
    union all
    select {{ previous }}.record_key
    from {{ previous }}
    where not exists (select 1 from {{ all_current }} where {{ all_current }}.record_key = {{ previous }}.record_key)
    {%- else %}
    select coalesce({{ current }}.record_key, {{ previous }}.record_key) as record_key
    from {{ current }}
    full outer join {{ previous }} on {{ current }}.record_key = {{ previous }}.record_key
    where
    {%- for column in columns %}
        {{ current }}.{{ column }} is distinct from {{ previous }}.{{ column }}{% if not loop.last %} or{% endif %}
    {%- endfor %}
    {%- endif %}
{% endmacro %}


{#- The records of tonight's clustering region (int_identity__cluster_region): the `seeds`
    (touched records and their last-night cluster mates) closed under tonight's edges.
    The walk steps over last night's clusters (`merged_cluster_id`, before the size guard),
    not records: a cluster with no touched record kept every edge that joined it, so
    tonight's graph holds it whole; one with a touched record is all seeds. So the clusters
    the seeds' clusters reach by the edges between clusters hold the same records as a walk
    over every record's edges, on a graph of a few links (at 3M people 16,834, not 7.6M edges
    both ways, which ran out of memory). `walk_edges` are the edges that can link two of
    last night's clusters (int_identity__cluster_region says which); a new record (no
    cluster last night) is a seed and its own node. Records gone may be in the result. -#}
{% macro identity_region(seeds, previous_clusters, walk_edges) %}
    with recursive edge_clusters as (
        select
            coalesce(cluster_a.merged_cluster_id, edges.node_a) as node,
            coalesce(cluster_b.merged_cluster_id, edges.node_b) as other
        from {{ walk_edges }} as edges
        left join {{ previous_clusters }} as cluster_a on edges.node_a = cluster_a.record_key
        left join {{ previous_clusters }} as cluster_b on edges.node_b = cluster_b.record_key
    ),

    cluster_links as (
        select node, other from edge_clusters where node <> other
    ),

    both_ways as (
        select node, other from cluster_links
        union all
        select other as node, node as other from cluster_links
    ),

    reach (node) as (
        select coalesce(previous.merged_cluster_id, seeds.record_key) as node
        from {{ seeds }} as seeds
        left join {{ previous_clusters }} as previous on seeds.record_key = previous.record_key
        union
        select both_ways.other as node
        from reach
        inner join both_ways on reach.node = both_ways.node
    )

    select record_key from {{ seeds }}
    union
    select previous.record_key from {{ previous_clusters }} as previous
    where previous.merged_cluster_id in (select reach.node from reach)
{% endmacro %}


{#- How the stored edges (int_identity__cluster_edges) stand to the stored clusters, whose
    newest stamp is `since`: 'behind' when written before it (a night that stopped after the
    clusters and before the edges), 'unknown' without a written_at (a table from before it
    existed) or without stamps, else 'current'. -#}
{% macro identity_stored_edges_state(edges, since) %}
    {%- if not execute or since is none
           or 'written_at' not in (adapter.get_columns_in_relation(edges) | map(attribute='name') | list) %}
        {{ return('unknown') }}
    {%- endif %}
    {%- set query = "select max(written_at) < timestamp '" ~ since ~ "' from " ~ edges %}
    {{ return('behind' if run_query(query).columns[0].values()[0] is true else 'current') }}
{% endmacro %}


{#- Did the night before stop inside the identity chain, leaving this table (the ids) behind
    the clusters or the published identity map (`published`) behind this table? Then the
    clusters last night's run changed are outside tonight's region with ids that were never
    assigned to them, and the ids must be assigned over every record, as a full rebuild does.
    Told by the clusters' rows written after this table's newest stamp (`since`) by an earlier
    run, and, while the map is still a table (the night that turns it into a view over this
    table, on DuckDB) by a count and a hash sum of both; `published` is none in a build that
    never made the map. -#}
{% macro identity_previous_night_stopped(published, since) %}
    {%- if not execute %}{{ return(false) }}{% endif %}
    {%- if published is not none and not published.is_view %}
        {%- set sums = "select count(*) as row_count, sum(hash(source, source_id, unified_id)) as hash_sum from " %}
        {%- set query = "select published.row_count = stored.row_count and published.hash_sum = stored.hash_sum"
                        ~ " from (" ~ sums ~ published ~ ") as published, (" ~ sums ~ this ~ ") as stored" %}
        {%- if run_query(query).columns[0].values()[0] is not true %}{{ return(true) }}{% endif %}
    {%- endif %}
    {%- if since is none %}{{ return(false) }}{% endif %}
    {%- set clusters_ahead = run_query("select count(*) > 0 from " ~ ref('int_identity__clusters')
        ~ " where changed_at > timestamp '" ~ since ~ "' and changed_at < " ~ run_start()) %}
    {{ return(clusters_ahead.columns[0].values()[0] is true) }}
{% endmacro %}


{#- Pre-hooks that turn last night's transient columns into tonight's defaults in place, before
    the model compares its rows with the table's: an UPDATE of a few columns, where writing the
    rows again through changed_rows (delete+insert of whole rows) cost 15x more. After a full
    build or a re-estimate every record carries them (≈ 2.3M rows at 1M people). The model's
    select then computes only tonight's region and writes the rows that differ from the reset
    ones, so the table ends as a full rebuild's. Inside the model's transaction; DuckDB only
    (on Spark keyed_incremental() rebuilds the table). -#}

{#- int_identity__cluster_region: last night's touched and region flags. -#}
{% macro identity_region_flags_reset() %}
    {%- if is_incremental() %}
    update {{ this }} set is_touched = false, in_region = false where is_touched or in_region
    {%- endif %}
{% endmacro %}

{#- int_identity__id_assignment: last night's fresh, merged or split ids become kept ones
    (`previous_unified_id = unified_id`), stamped as the rows the run writes, as their
    rewriting was (a night that writes nothing leaves an older newest stamp, which reads as a
    night that stopped). A table before the stamps is computed whole. -#}
{% macro identity_id_transitions_reset() %}
    {%- if is_incremental() and 'changed_at' in (adapter.get_columns_in_relation(this) | map(attribute='name') | list) %}
    update {{ this }}
    set previous_unified_id = unified_id, is_new_unified_id = false,
        is_previous_id_claimed_here = true, changed_at = {{ run_start() }}
    where is_new_unified_id or not is_previous_id_claimed_here or previous_unified_id is distinct from unified_id
    {%- endif %}
{% endmacro %}

{#- The records whose int_identity__id_assignment row may differ from the table's: tonight's
    region and records gone (a placeholder each). Every other record keeps its id, and its row
    is the table's, with last night's transitions reset (identity_id_transitions_reset). -#}
{% macro identity_id_scope(region) %}
    select record_key from {{ region }} where in_region
    union
    {{ changed_rows_gone(region) }}
{% endmacro %}

-- One row per (record pair, both records' fingerprints): the comparison levels of the pair
-- (identity_compare_pairs) and the values an exact agreement agrees on (for term
-- frequencies). The cache of the costly string comparisons, over the candidate pairs and
-- the random pairs that estimate u. Incremental (an exception to the folder's tables): a
-- night compares only pairs it has not compared with these fingerprints before, i.e. pairs
-- with a new or changed record, or newly blocked together. Rows of fingerprints no longer
-- current are ignored downstream and dropped by a full refresh. Such a pair has a record whose
-- blocks were rebuilt since the cache last appended (`compared_at`): only candidate pairs of
-- those records are looked up, unless tonight re-estimates (the random pairs, then all).
-- depends_on: {{ ref('int_identity__blocking_keys') }}
-- depends_on: {{ ref('int_identity__model_schedule') }}
{{ config(materialized='incremental', on_schema_change='append_new_columns') }}
{%- set since = newest_stamp(this, column='compared_at') if is_incremental() and not identity_reestimate() else none %}

with
{%- if since is not none %}

rebuilt_records as (
    {{ identity_rebuilt_block_records(since) }}
),
{%- endif %}

pairs as (
    select node_a, node_b from {{ ref('int_identity__candidate_pairs') }}
    {%- if since is not none %}
    where
        node_a in (select record_key from rebuilt_records)
        or node_b in (select record_key from rebuilt_records)
    {%- endif %}
    union
    select node_a, node_b from {{ ref('int_identity__u_sample_pairs') }}
),

-- Every pair with its records' fingerprints, on narrow columns: the cache lookup then carries
-- four keys per pair, and only tonight's new pairs are joined to the fields they compare (at
-- 1M people, 1.5M pairs a night and a few thousand new ones). The records are named where they
-- are read, not one CTE read four times, which DuckDB would copy whole.
pair_fingerprints as (
    select pairs.node_a, pairs.node_b, a.fingerprint as fingerprint_a, b.fingerprint as fingerprint_b
    from pairs
    inner join {{ ref('int_identity__record_fingerprints') }} as a on pairs.node_a = a.record_key
    inner join {{ ref('int_identity__record_fingerprints') }} as b on pairs.node_b = b.record_key
),

new_pair_fingerprints as (
    select * from pair_fingerprints
    {%- if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as cached
        where
            cached.node_a = pair_fingerprints.node_a
            and cached.node_b = pair_fingerprints.node_b
            and cached.fingerprint_a = pair_fingerprints.fingerprint_a
            and cached.fingerprint_b = pair_fingerprints.fingerprint_b
            and cached.cache_version = {{ identity_cache_version() }}
    )
    {%- endif %}
),

new_pairs as (
    select
        new_pair.node_a,
        new_pair.node_b,
        new_pair.fingerprint_a,
        new_pair.fingerprint_b,
        {{ identity_pair_sides('a', 'b') }}
    from new_pair_fingerprints as new_pair
    inner join {{ ref('int_identity__record_fingerprints') }} as a on new_pair.node_a = a.record_key
    inner join {{ ref('int_identity__record_fingerprints') }} as b on new_pair.node_b = b.record_key
),

compared as (
    {{ identity_compare_pairs('new_pairs', 'node_a, node_b, fingerprint_a, fingerprint_b') }}
),

final as (
    select
        node_a,
        node_b,
        fingerprint_a,
        fingerprint_b,
        {%- for comparison in identity_comparison_names() %}
        {{ comparison }}_level,
        {%- endfor %}
        first_value,
        last_value,
        street_value,
        postcode_value,
        city_value,
        {{ identity_cache_version() }} as cache_version,
        cast('{{ var("ds") }}' as date) as compared_on,
        {{ run_start() }} as compared_at
    from compared
)

select * from final

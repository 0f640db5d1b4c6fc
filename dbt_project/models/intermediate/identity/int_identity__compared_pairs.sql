-- One row per (record pair, both records' fingerprints): the comparison levels of the pair
-- (identity_compare_pairs) and the values an exact agreement agrees on (for term
-- frequencies). The cache of the costly string comparisons, over the candidate pairs and
-- the random pairs that estimate u. Incremental (an exception to the folder's tables): a
-- night compares only pairs it has not compared with these fingerprints before, i.e. pairs
-- with a new or changed record, or newly blocked together. Rows of fingerprints no longer
-- current are ignored downstream and dropped by a full refresh.
{{ config(materialized='incremental', on_schema_change='fail') }}

with candidate_pairs as (
    select node_a, node_b from {{ ref('int_identity__candidate_pairs') }}
),

sample_pairs as (
    select node_a, node_b from {{ ref('int_identity__u_sample_pairs') }}
),

records as (
    select * from {{ ref('int_identity__record_fingerprints') }}
),

pairs as (
    select node_a, node_b from candidate_pairs
    union
    select node_a, node_b from sample_pairs
),

keyed as (
    select
        pairs.node_a,
        pairs.node_b,
        a.fingerprint as fingerprint_a,
        b.fingerprint as fingerprint_b,
        {{ identity_pair_sides('a', 'b') }}
    from pairs
    inner join records as a on pairs.node_a = a.record_key
    inner join records as b on pairs.node_b = b.record_key
),

new_pairs as (
    select * from keyed
    {%- if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as cached
        where
            cached.node_a = keyed.node_a
            and cached.node_b = keyed.node_b
            and cached.fingerprint_a = keyed.fingerprint_a
            and cached.fingerprint_b = keyed.fingerprint_b
            and cached.cache_version = {{ identity_cache_version() }}
    )
    {%- endif %}
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
        cast('{{ var("ds") }}' as date) as compared_on
    from compared
)

select * from final

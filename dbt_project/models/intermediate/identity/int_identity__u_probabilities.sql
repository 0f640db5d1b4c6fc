-- One row per (comparison, level): u = P(level | two different persons), estimated from
-- random pairs of person records (crm/shop with at least one name,
-- int_identity__u_sample_pairs; their levels from the cache int_identity__compared_pairs).
-- Almost every random pair is two different persons, so the level shares among them are u.
-- The shares are smoothed toward the weak prior u0 (identity_comparison_levels) with
-- var identity_u_prior_pairs pseudo-pairs, which only matters for tiny populations.
-- Part of the stored identity model: re-estimated only when int_identity__model_schedule
-- says so, else kept as it is (docs/identity.md).
{%- set prior_pairs = var('identity_u_prior_pairs', 10000) %}

{%- if identity_keep_stored_model() %}
{{ identity_stored_rows() }}
{%- else %}

with sample_pairs as (
    select * from {{ ref('int_identity__u_sample_pairs') }}
),

records as (
    select * from {{ ref('int_identity__record_fingerprints') }}
),

cached as (
    select * from {{ ref('int_identity__compared_pairs') }}
    where cache_version = {{ identity_cache_version() }}
),

prior_levels as (
    {{ identity_prior_rows() }}
),

compared as (
    select cached.*
    from sample_pairs
    inner join records as a on sample_pairs.node_a = a.record_key
    inner join records as b on sample_pairs.node_b = b.record_key
    inner join cached
        on
            sample_pairs.node_a = cached.node_a
            and sample_pairs.node_b = cached.node_b
            and a.fingerprint = cached.fingerprint_a
            and b.fingerprint = cached.fingerprint_b
),

-- Count the level vectors first (one pass over the pairs), then unfold per comparison.
patterns as (
    {{ identity_count_patterns('compared') }}
),

levels_long as (
    {%- for comparison in identity_comparison_names() %}
    select '{{ comparison }}' as comparison, {{ comparison }}_level as comparison_level, pair_count from patterns
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

counted as (
    select comparison, comparison_level, sum(pair_count) as pair_count
    from levels_long
    where comparison_level >= 0
    group by comparison, comparison_level
),

totals as (
    select comparison, sum(pair_count) as compared_pairs
    from counted
    group by comparison
),

final as (
    select
        prior_levels.comparison,
        prior_levels.comparison_level,
        coalesce(counted.pair_count, 0) as sampled_pair_count,
        coalesce(totals.compared_pairs, 0) as sampled_compared_pairs,
        (coalesce(counted.pair_count, 0) + {{ prior_pairs }} * prior_levels.u_prior)
            / (coalesce(totals.compared_pairs, 0) + {{ prior_pairs }}) as u_probability,
        cast('{{ var("ds") }}' as date) as estimated_on,
        {{ identity_estimated_at_column() }}
    from prior_levels
    left join counted
        on prior_levels.comparison = counted.comparison and prior_levels.comparison_level = counted.comparison_level
    left join totals on prior_levels.comparison = totals.comparison
)

select * from final
{%- endif %}

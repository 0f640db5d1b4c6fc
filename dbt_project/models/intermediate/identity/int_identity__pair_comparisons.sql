-- One row per candidate pair: the level of every comparison (identity_compare_pairs, read
-- from the cache int_identity__compared_pairs for the records' current fingerprints) and the
-- term-frequency adjustment of its exact name and address agreements. Stamped and scoped
-- (identity_pair_scope): a night recomputes only the pairs of records whose blocks were
-- rebuilt since this table was last written, or that are gone; all of them when the term
-- frequencies were estimated since.
-- depends_on: {{ ref('int_identity__blocking_keys') }}
-- depends_on: {{ ref('int_identity__record_fingerprints') }}
-- depends_on: {{ ref('int_identity__model_schedule') }}
{{ changed_rows_config(['node_a', 'node_b'], 'blocking_rule', stamped=true) }}
{%- set since = identity_pair_since('int_identity__term_frequencies') %}
with candidates as {{ not_materialized_cte() }} (
    select * from {{ ref('int_identity__candidate_pairs') }}
),
{%- if since is not none %}

{{ identity_pair_scope(since, 'candidates') }},
{%- endif %}

pairs as {{ not_materialized_cte() }} (
    select * from {{ 'upstream_in_scope' if since is not none else 'candidates' }}
),

records as {{ not_materialized_cte() }} (
    select * from {{ ref('int_identity__record_fingerprints') }}
),

cached as (
    select * from {{ ref('int_identity__compared_pairs') }}
    where cache_version = {{ identity_cache_version() }}
),

frequencies as {{ not_materialized_cte() }} (
    select * from {{ ref('int_identity__term_frequencies') }}
),

-- Every candidate pair was compared (int_identity__compared_pairs runs over them all);
-- a left join so a missing comparison would show as null levels (not_null tests).
compared as (
    select
        pairs.node_a,
        pairs.node_b,
        pairs.blocking_rule,
        {%- for comparison in identity_comparison_names() %}
        cached.{{ comparison }}_level,
        {%- endfor %}
        cached.first_value,
        cached.last_value,
        cached.street_value,
        cached.postcode_value,
        cached.city_value
    from pairs
    inner join records as a on pairs.node_a = a.record_key
    inner join records as b on pairs.node_b = b.record_key
    left join cached
        on
            pairs.node_a = cached.node_a
            and pairs.node_b = cached.node_b
            and a.fingerprint = cached.fingerprint_a
            and b.fingerprint = cached.fingerprint_b
),

-- Term frequencies adjust exact agreements only; the address levels use the value they agree
-- on (street, postcode, or only the city). One row per agreement, so one join to frequencies.
agreements as (
    select node_a, node_b, 'first_name' as field, first_value as value
    from compared where first_name_level = 4
    union all
    select node_a, node_b, 'last_name' as field, last_value as value
    from compared where last_name_level = 4
    union all
    select node_a, node_b, 'street' as field, street_value as value
    from compared where address_level in (5, 3)
    union all
    select node_a, node_b, 'postcode' as field, postcode_value as value
    from compared where address_level = 2
    union all
    select node_a, node_b, 'city' as field, city_value as value
    from compared where address_level = 1
),

adjustments as (
    select
        agreements.node_a,
        agreements.node_b,
        {{ exact_sum('frequencies.tf_adjustment') }} as tf_adjustment
    from agreements
    inner join frequencies
        on agreements.field = frequencies.field and agreements.value = frequencies.value
    group by agreements.node_a, agreements.node_b
),

final as (
    select
        compared.node_a,
        compared.node_b,
        compared.blocking_rule,
        compared.first_name_level,
        compared.last_name_level,
        compared.birth_date_level,
        compared.address_level,
        compared.phone_level,
        compared.email_local_part_level,
        coalesce(adjustments.tf_adjustment, 0) as tf_adjustment,
        {{ changed_at_column() }}
    from compared
    left join adjustments
        on compared.node_a = adjustments.node_a and compared.node_b = adjustments.node_b
)

-- Written as its changes (changed_rows.sql).
{{ changed_rows('final', ['node_a', 'node_b'], scope=('scope' if since is not none else none), stamped=true) }}

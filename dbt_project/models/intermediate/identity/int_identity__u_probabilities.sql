-- One row per (comparison, level): u = P(level | two different persons), estimated from
-- random pairs of person records (crm/shop with at least one name). Almost every random
-- pair is two different persons, so the level shares among them are u. About
-- var identity_u_sample_pairs pairs are drawn (each record meets up to
-- var identity_u_max_partners pseudo-random partners); the shares are smoothed toward the weak
-- prior u0 (identity_comparison_levels) with var identity_u_prior_pairs pseudo-pairs, which
-- only matters for tiny populations.
{%- set sample_pairs = var('identity_u_sample_pairs', 1000000) %}
{%- set max_partners = var('identity_u_max_partners', 20) %}
{%- set prior_pairs = var('identity_u_prior_pairs', 10000) %}

with records as (
    select * from {{ ref('int_identity__guarded_records') }}
    where source in ('crm', 'shop') and (first_name_clean is not null or last_name_clean is not null)
),

prior as (
    {{ identity_prior_rows() }}
),

numbered as (
    select
        *,
        row_number() over (order by md5(record_key)) - 1 as record_number,
        count(*) over () as record_count
    from records
),

partners as (
    select partner_number
    from (values {% for i in range(max_partners) %}({{ i }}){% if not loop.last %}, {% endif %}{% endfor %})
        as partner_numbers (partner_number)
),

-- Record i meets record (i + offset) mod n, offsets spread pseudo-randomly over 1..n-1.
sampled as (
    select
        numbered.record_number,
        numbered.record_count,
        partners.partner_number,
        mod(numbered.record_number + 1 + mod(
            numbered.record_number * 7919 + partners.partner_number * 104729 + partners.partner_number * partners.partner_number * 31,
            numbered.record_count - 1
        ), numbered.record_count) as other_number
    from numbered
    cross join partners
    where
        numbered.record_count > 1
        and partners.partner_number < greatest(1, {{ sample_pairs }} / numbered.record_count)
),

joined as (
    select
        sampled.record_number as node_a,
        sampled.other_number as node_b,
        {{ identity_pair_sides('a', 'b') }}
    from sampled
    inner join numbered as a on sampled.record_number = a.record_number
    inner join numbered as b on sampled.other_number = b.record_number
),

compared as (
    {{ identity_compare_pairs('joined', 'node_a, node_b') }}
),

-- Count the level vectors first (one pass over the pairs), then unfold per comparison.
patterns as (
    select
        {%- for comparison in identity_comparison_names() %}
        {{ comparison }}_level,
        {%- endfor %}
        count(*) as pair_count
    from compared
    group by
        {%- for comparison in identity_comparison_names() %}
        {{ comparison }}_level{% if not loop.last %},{% endif %}
        {%- endfor %}
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
        prior.comparison,
        prior.comparison_level,
        coalesce(counted.pair_count, 0) as sampled_pair_count,
        coalesce(totals.compared_pairs, 0) as sampled_compared_pairs,
        (coalesce(counted.pair_count, 0) + {{ prior_pairs }} * prior.u_prior)
            / (coalesce(totals.compared_pairs, 0) + {{ prior_pairs }}) as u_probability
    from prior
    left join counted
        on prior.comparison = counted.comparison and prior.comparison_level = counted.comparison_level
    left join totals on prior.comparison = totals.comparison
)

select * from final

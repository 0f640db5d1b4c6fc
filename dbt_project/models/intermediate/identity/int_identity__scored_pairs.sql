-- One row per candidate pair: its Fellegi-Sunter match weight and probability.
-- match weight = prior + sum over comparisons of log2(m / u) of the pair's level (0 when a
-- side is missing) + the term-frequency adjustment of exact agreements. m and u are learned
-- on this run's data (int_identity__m_probabilities), and so is the prior: the log-odds that
-- two random person records are one person, which falls as the population grows.
-- A pair matches at probability >= var identity_match_threshold and if it passes
-- identity_match_guard (evidence beyond the names; a first name that differs outright
-- needs the birth date to agree). Stamped and scoped (identity_pair_scope): a night scores
-- only the pairs of records whose blocks were rebuilt since this table was last written, or
-- that are gone; all of them when m and u were estimated since, or when a kept row's
-- is_match disagrees with tonight's threshold and guard.
-- depends_on: {{ ref('int_identity__blocking_keys') }}
-- depends_on: {{ ref('int_identity__record_fingerprints') }}
-- depends_on: {{ ref('int_identity__model_schedule') }}
{{ changed_rows_config(['node_a', 'node_b'], 'blocking_rule', stamped=true) }}
{%- set threshold = var('identity_match_threshold') %}
{%- set since = identity_pair_since('int_identity__m_probabilities') %}
{%- if since is not none %}
    {#- Another threshold or guard than the kept rows were decided with: decide every pair again. -#}
    {%- set stale = run_query('select count(*) from ' ~ this ~ ' where is_match is distinct from '
                              ~ identity_is_match('match_probability', threshold)).columns[0].values()[0] %}
    {%- if stale > 0 %}{%- set since = none %}{%- endif %}
{%- endif %}

with all_comparisons as {{ not_materialized_cte() }} (
    select * from {{ ref('int_identity__pair_comparisons') }}
),
{%- if since is not none %}

{{ identity_pair_scope(since, 'all_comparisons') }},
{%- endif %}

comparisons as (
    select * from {{ 'upstream_in_scope' if since is not none else 'all_comparisons' }}
),

parameters as (
    select * from {{ ref('int_identity__m_probabilities') }}
),

prior as (
    select max(prior_weight) as prior_weight from parameters
),

weighted as (
    select
        comparisons.*,
        {%- for comparison in identity_comparison_names() %}
        {%- if comparison == 'email_local_part' %}
        -- A mailbox name is mostly built from the person's name (anna.schmidt@...), so
        -- when both names agree exactly it adds nothing: namesakes share it as often as
        -- duplicates do (measured on the independent generator: 1,815 false links at 20k).
        case
            when comparisons.first_name_level = 4 and comparisons.last_name_level = 4 then 0
            else coalesce({{ comparison }}_weights.match_weight, 0)
        end as {{ comparison }}_weight,
        {%- else %}
        coalesce({{ comparison }}_weights.match_weight, 0) as {{ comparison }}_weight,
        {%- endif %}
        {%- endfor %}
        prior.prior_weight
    from comparisons
    cross join prior
    {%- for comparison in identity_comparison_names() %}
    left join parameters as {{ comparison }}_weights
        on {{ comparison }}_weights.comparison = '{{ comparison }}'
        and comparisons.{{ comparison }}_level = {{ comparison }}_weights.comparison_level
    {%- endfor %}
),

scored as (
    select
        *,
        prior_weight
        {%- for comparison in identity_comparison_names() %}
        + {{ comparison }}_weight
        {%- endfor %}
        + tf_adjustment as match_weight
    from weighted
),

final as (
    select
        node_a,
        node_b,
        blocking_rule,
        first_name_level,
        last_name_level,
        birth_date_level,
        address_level,
        phone_level,
        email_local_part_level,
        {%- for comparison in identity_comparison_names() %}
        {{ comparison }}_weight,
        {%- endfor %}
        tf_adjustment,
        prior_weight,
        match_weight,
        1 / (1 + pow(2, -greatest(-60, least(60, match_weight)))) as match_probability,
        {{ identity_is_match('1 / (1 + pow(2, -greatest(-60, least(60, match_weight))))', threshold) }} as is_match,
        {{ changed_at_column() }}
    from scored
)

-- Written as its changes (changed_rows.sql).
{{ changed_rows('final', ['node_a', 'node_b'], scope=('scope' if since is not none else none), stamped=true) }}

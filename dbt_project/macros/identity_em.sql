{#-
    One expectation-maximisation iteration for int_identity__m_probabilities, as plain SQL.

    E step: each comparison pattern of `patterns_relation` gets its match probability from
    the `previous` iteration's m, u and match share (comparisons in `fixed` left out); M step:
    m of every level = its match-weighted share, u = its non-match-weighted share (both pulled
    toward their starting values by `prior_pairs` pseudo-pairs; `fixed` comparisons keep m0
    and the random pairs' u), the match share = the mean match probability.
    u moves because the session's non-matches are not random pairs: blocking made them agree
    (namesakes in one town, people born on one day with one postcode), and with the random
    pairs' u EM would call that agreement a match (docs/identity.md, "EM that learns u too").
    Expects CTEs `prior` (identity_prior_rows) and `u_probabilities` in scope.
-#}
{% macro identity_em_step(patterns_relation, previous, fixed, prior_pairs, initial_lambda) %}
    {%- set fixed_list = ("'" ~ fixed | join("', '") ~ "'") if fixed else "''" %}
    select
        prior.comparison,
        prior.comparison_level,
        prior.m_prior,
        case when prior.comparison in ({{ fixed_list }}) then prior.m_prior
            else (coalesce(maximised.weighted_pairs, 0) + {{ prior_pairs }} * prior.m_prior)
                / (coalesce(max(maximised.comparison_weighted_pairs) over (partition by prior.comparison), 0)
                + {{ prior_pairs }})
        end as m_probability,
        case when prior.comparison in ({{ fixed_list }}) then u_probabilities.u_probability
            else (coalesce(maximised.nonmatch_pairs, 0) + {{ prior_pairs }} * u_probabilities.u_probability)
                / (coalesce(max(maximised.comparison_nonmatch_pairs) over (partition by prior.comparison), 0)
                + {{ prior_pairs }})
        end as u_probability,
        coalesce(max(maximised.match_share) over (), {{ initial_lambda }}) as match_share
    from prior
    inner join u_probabilities
        on prior.comparison = u_probabilities.comparison
        and prior.comparison_level = u_probabilities.comparison_level
    left join (
        select
            comparison,
            comparison_level,
            weighted_pairs,
            sum(case when comparison_level >= 0 then weighted_pairs else 0 end)
                over (partition by comparison) as comparison_weighted_pairs,
            pairs - weighted_pairs as nonmatch_pairs,
            sum(case when comparison_level >= 0 then pairs - weighted_pairs else 0 end)
                over (partition by comparison) as comparison_nonmatch_pairs,
            sum(weighted_pairs) over (partition by comparison)
                / sum(pairs) over (partition by comparison) as match_share
        from (
            select
                comparison,
                comparison_level,
                sum(pair_count * match_probability) as weighted_pairs,
                sum(pair_count) as pairs
            from (
                select
                    comparison,
                    comparison_level,
                    pair_count,
                    1 / (1 + exp(-greatest(-40, least(40,
                        ln(match_share / (1 - match_share)) + pattern_log_factor
                    )))) as match_probability
                from (
                    select
                        patterns.pattern_id,
                        patterns.pair_count,
                        patterns.comparison,
                        patterns.comparison_level,
                        sum(case when patterns.comparison in ({{ fixed_list }}) then 0
                            else coalesce(ln(previous.m_probability / previous.u_probability), 0) end)
                            over (partition by patterns.pattern_id) as pattern_log_factor,
                        max(previous.match_share) over () as match_share
                    from {{ patterns_relation }} as patterns
                    left join {{ previous }} as previous
                        on patterns.comparison = previous.comparison
                        and patterns.comparison_level = previous.comparison_level
                ) as expected
            ) as per_pattern
            group by comparison, comparison_level
        ) as per_level
    ) as maximised
        on prior.comparison = maximised.comparison
        and prior.comparison_level = maximised.comparison_level
{% endmacro %}




{#-
    The training sessions' CTEs: for each session of `sessions` ({name: {filter, fixed}}),
    `<name>_patterns` (the CTE `patterns` where filter), `<name>_0` (the CTE
    `parameters_start`) and the EM iterations `<name>_1` .. `<name>_<iterations>`, each one
    identity_em_step over the one before; comma-separated, no trailing comma. `context` is
    the text of the caller's CTEs (after `with`) these read: patterns, parameters_start,
    prior, u_probabilities.
-#}
{% macro identity_em_sessions(sessions, iterations, prior_pairs, initial_lambda, context) %}
    {{ return(adapter.dispatch('identity_em_sessions', 'personalization')(
        sessions, iterations, prior_pairs, initial_lambda, context)) }}
{% endmacro %}

{% macro identity_em_session_start(session, spec) %}
{{ session }}_patterns as (
    select * from patterns where {{ spec.filter }}
),

{{ session }}_0 as (
    select * from parameters_start
)
{%- endmacro %}

{#- DuckDB: every iteration unrolled into the model's one query (context unused). -#}
{% macro default__identity_em_sessions(sessions, iterations, prior_pairs, initial_lambda, context) %}
{%- for session, spec in sessions.items() %}

{{ identity_em_session_start(session, spec) }},
{%- for k in range(1, iterations + 1) %}

{{ session }}_{{ k }} as (
    {{ identity_em_step(session ~ '_patterns', session ~ '_' ~ (k - 1), spec.fixed, prior_pairs, initial_lambda) }}
){% if not loop.last %},{% endif %}
{%- endfor %}
{%- if not loop.last %},{% endif %}
{%- endfor %}
{% endmacro %}

{#-
    Spark: the unrolled query is a plan hundreds of operators deep that Spark's optimizer
    does not get through (> 7.5 min on the demo). Each iteration runs as its own query (all
    sessions at once) with the same identity_em_step SQL; its result (one row per session
    and comparison level: a few dozen rows at any data size) comes back to the driver and
    goes into the next iteration as literal rows. Doubles travel as their shortest
    round-trip decimal text, so each iteration reads exactly the doubles the previous one
    computed. The model gets the last two iterations (all it reads) as literal CTEs.
-#}
{% macro spark__identity_em_sessions(sessions, iterations, prior_pairs, initial_lambda, context) %}
{%- if not execute or iterations < 1 -%}
    {{ return(default__identity_em_sessions(sessions, iterations, prior_pairs, initial_lambda, context)) }}
{%- endif -%}
{%- set columns = ['comparison', 'comparison_level', 'm_prior', 'm_probability', 'u_probability', 'match_share'] -%}
{%- set starts = [] -%}
{%- for session, spec in sessions.items() -%}
    {%- do starts.append(identity_em_session_start(session, spec)) -%}
{%- endfor -%}
{%- set with_sessions = "with " ~ context ~ ",\n" ~ starts | join(",\n") ~ "\n" -%}
{%- set first = run_query(with_sessions ~ "select " ~ columns | join(', ') ~ " from parameters_start") -%}
{%- set state = namespace(previous={}, kept={}) -%}
{%- for session in sessions -%}
    {%- do state.previous.update({session: first.rows}) -%}
{%- endfor -%}
{%- for k in range(1, iterations + 1) -%}
    {%- set steps = [] -%}
    {%- for session, spec in sessions.items() -%}
        {%- do steps.append("select '" ~ session ~ "' as em_session, " ~ columns | join(', ') ~ " from ("
            ~ identity_em_step(session ~ '_patterns', "(" ~ identity_em_literal_rows(state.previous[session], columns) ~ ")",
                               spec.fixed, prior_pairs, initial_lambda) ~ ") as step") -%}
    {%- endfor -%}
    {%- set result = run_query(with_sessions ~ steps | join("\nunion all\n")) -%}
    {%- for session in sessions -%}
        {%- set rows = [] -%}
        {%- for row in result.rows if row['em_session'] == session -%}
            {%- do rows.append(row) -%}
        {%- endfor -%}
        {%- do state.previous.update({session: rows}) -%}
        {%- if k >= iterations - 1 -%}
            {%- do state.kept.update({session ~ '_' ~ k: identity_em_literal_rows(rows, columns)}) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endfor -%}
{%- for session, spec in sessions.items() %}

{{ identity_em_session_start(session, spec) }}
{%- for k in range([iterations - 1, 1] | max, iterations + 1) %},

{{ session }}_{{ k }} as (
    {{ state.kept[session ~ '_' ~ k] }}
)
{%- endfor %}
{%- if not loop.last %},{% endif %}
{%- endfor %}
{% endmacro %}

{#- EM parameter rows (agate rows with `columns`) as a select over literal values, with the
    column types of identity_em_step's output (numbers as text cast back: exact for doubles). -#}
{% macro identity_em_literal_rows(rows, columns) -%}
    {%- set literals = [] -%}
    {%- for row in rows -%}
        {%- set values = [] -%}
        {%- for column in columns -%}
            {%- if row[column] is none -%}
                {%- do values.append('null') -%}
            {%- else -%}
                {%- do values.append("'" ~ row[column] ~ "'") -%}
            {%- endif -%}
        {%- endfor -%}
        {%- do literals.append('(' ~ values | join(', ') ~ ')') -%}
    {%- endfor -%}
    select
        comparison,
        cast(comparison_level as int) as comparison_level,
        cast(m_prior as double) as m_prior,
        cast(m_probability as double) as m_probability,
        cast(u_probability as double) as u_probability,
        cast(match_share as double) as match_share
    from values {{ literals | join(', ') }} as em_rows ({{ columns | join(', ') }})
{%- endmacro %}

{#-
    The prior of int_identity__m_probabilities: the share of matches among all record pairs,
    by EM with m and u fixed, as CTEs share_0 .. share_<passes> (each followed by a comma).
    `records` has record_count; `pattern_factors` has pair_count, pattern_log_factor and
    passes_guard per pattern (the CTE's columns are read by that name).
-#}
{% macro identity_prior_share_em(records, pattern_factors, passes) %}
share_0 as (
    select 1.0 / greatest(1, record_count - 1) as match_share, record_count * (record_count - 1) / 2.0 as record_pair_count
    from {{ records }}
),
{%- for k in range(1, passes + 1) %}

share_{{ k }} as (
    select
        least(0.5, greatest(1.0 / greatest(1.0, max(previous.record_pair_count)), sum(
            case when pattern_factors.passes_guard then pattern_factors.pair_count * (1 / (1 + exp(-greatest(-40, least(40,
                ln(previous.match_share / (1 - previous.match_share)) + pattern_factors.pattern_log_factor
            ))))) else 0 end
        ) / greatest(1.0, max(previous.record_pair_count)))) as match_share,
        max(previous.record_pair_count) as record_pair_count
    from share_{{ k - 1 }} as previous
    cross join {{ pattern_factors }} as pattern_factors
),
{%- endfor %}
{% endmacro %}

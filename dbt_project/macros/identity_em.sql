{#-
    One expectation-maximisation iteration for int_identity__m_probabilities, as plain SQL.

    E step: each comparison pattern of `patterns_relation` gets its match probability from
    the `previous` iteration's m, u and match share (comparisons in `fixed` left out); M step:
    m of every level = its match-weighted share (levels of `fixed` comparisons keep m0), the
    match share = the mean match probability. With update_m=false only the share moves.
    Expects CTEs `prior` (identity_prior_rows) and `u_probabilities` in scope.
-#}
{% macro identity_em_step(patterns_relation, previous, fixed, prior_pairs, initial_lambda, update_m=true) %}
    select
        prior.comparison,
        prior.comparison_level,
        prior.m_prior,
        {%- if update_m %}
        case when prior.comparison in ({{ ("'" ~ fixed | join("', '") ~ "'") if fixed else "''" }}) then prior.m_prior
            else (coalesce(maximised.weighted_pairs, 0) + {{ prior_pairs }} * prior.m_prior)
                / (coalesce(max(maximised.comparison_weighted_pairs) over (partition by prior.comparison), 0)
                + {{ prior_pairs }})
        end as m_probability,
        {%- else %}
        previous_m.m_probability,
        {%- endif %}
        u_probabilities.u_probability,
        coalesce(max(maximised.match_share) over (), {{ initial_lambda }}) as match_share
    from prior
    inner join u_probabilities
        on prior.comparison = u_probabilities.comparison
        and prior.comparison_level = u_probabilities.comparison_level
    {%- if not update_m %}
    inner join {{ previous }} as previous_m
        on prior.comparison = previous_m.comparison
        and prior.comparison_level = previous_m.comparison_level
    {%- endif %}
    left join (
        select
            comparison,
            comparison_level,
            weighted_pairs,
            sum(case when comparison_level >= 0 then weighted_pairs else 0 end)
                over (partition by comparison) as comparison_weighted_pairs,
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
                        sum(case when patterns.comparison in ({{ ("'" ~ fixed | join("', '") ~ "'") if fixed else "''" }}) then 0
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


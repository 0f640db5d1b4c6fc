-- One row per (comparison, level): m = P(level | same person), learned by expectation-
-- maximisation over the candidate pairs in training sessions as Splink does: each session
-- takes the candidate pairs that agree exactly on some fields (its rule) and estimates m of
-- the other comparisons only. Among pairs born on the same day, the different persons do not
-- look like one person on their names and addresses, so EM can tell them apart; over all
-- candidate pairs it could not (a household's members agree on address, last name and phone,
-- which random pairs rarely do, so EM would call them one person). Sessions:
--   same_birth_date (birth_date exact): trains names, address, phone, mailbox name;
--   same_full_name  (both names exact): trains birth date, address, phone (not the mailbox
--                   name: it is mostly built from the names, so namesakes share it).
-- Within a session u is learned too (both classes free, starting from the random pairs' u of
-- int_identity__u_probabilities): blocking made the session's non-matches agree far more
-- often than random pairs (namesakes blocked by name and city share the city), and with the
-- random u EM took that agreement for the match class (docs/identity.md, "EM that learns u
-- too"). The scores use the random pairs' u, the u of the population the prior is over.
-- A comparison's m is the mean over the sessions that trained it. E step: each pattern's
-- match probability from m, u and the session's match share; M step: m and u = the match-
-- and non-match-weighted share of each level. var identity_em_iterations iterations are
-- unrolled into plain SQL (Spark runs them one query each: identity_em_sessions); `m_change`
-- is the last iteration's largest move, ~0 when converged. The weak priors m0 and u count as
-- var identity_m_prior_pairs pairs. Finally the prior, the probability that two random person
-- records are one person, is estimated by EM over all n(n-1)/2 record pairs with m and u fixed
-- (`prior_weight`). Stored model: re-estimated only when int_identity__model_schedule says so.
{%- set iterations = var('identity_em_iterations', 40) %}
{%- set prior_pairs = var('identity_m_prior_pairs', 10) %}
{%- set initial_lambda = var('identity_em_initial_lambda', 0.1) %}
{%- set sessions = {
    'same_birth_date': {'filter': 'birth_date_level = 3', 'fixed': ['birth_date']},
    'same_full_name': {'filter': 'first_name_level = 4 and last_name_level = 4',
                       'fixed': ['first_name', 'last_name', 'email_local_part']},
} %}

{#- The CTEs the EM iterations read, kept as text: on Spark identity_em_sessions runs each
    iteration as its own query over them (identity_em.sql). -#}
{%- set em_context %}
patterns as (
    select * from {{ ref('int_identity__comparison_patterns') }}
),

u_probabilities as (
    select * from {{ ref('int_identity__u_probabilities') }}
),

prior as (
    {{ identity_prior_rows() }}
),

parameters_start as (
    select
        prior.comparison,
        prior.comparison_level,
        prior.m_prior,
        prior.m_prior as m_probability,
        u_probabilities.u_probability,
        cast({{ initial_lambda }} as double) as match_share
    from prior
    inner join u_probabilities
        on prior.comparison = u_probabilities.comparison
        and prior.comparison_level = u_probabilities.comparison_level
)
{%- endset %}

{%- if identity_keep_stored_model() %}
{{ identity_stored_rows() }}
{%- else %}

with {{ em_context }},
{{ identity_em_sessions(sessions, iterations, prior_pairs, initial_lambda, em_context) }},

-- Mean m over the sessions that trained each comparison.
trained as (
    select
        sessions.comparison,
        sessions.comparison_level,
        max(sessions.m_prior) as m_prior,
        avg(sessions.m_probability) as m_probability,
        max(u_probabilities.u_probability) as u_probability,
        max(sessions.m_change) as m_change
    from (
        {%- for session, spec in sessions.items() %}
        select
            last_step.comparison,
            last_step.comparison_level,
            last_step.m_prior,
            last_step.m_probability,
            abs(last_step.m_probability - step_before.m_probability) as m_change
        from {{ session }}_{{ iterations }} as last_step
        inner join {{ session }}_{{ iterations - 1 }} as step_before
            on last_step.comparison = step_before.comparison
            and last_step.comparison_level = step_before.comparison_level
        where last_step.comparison not in ({{ "'" ~ spec.fixed | join("', '") ~ "'" }})
        {%- if not loop.last %}
        union all
        {%- endif %}
        {%- endfor %}
    ) as sessions
    inner join u_probabilities
        on sessions.comparison = u_probabilities.comparison
        and sessions.comparison_level = u_probabilities.comparison_level
    group by sessions.comparison, sessions.comparison_level
),

records as (
    select count(*) as record_count
    from {{ ref('int_identity__guarded_records') }}
    where source in ('crm', 'shop') and (first_name_clean is not null or last_name_clean is not null)
),

-- Pattern weights (sum of log(m/u)) with the trained m; the guards of
-- int_identity__scored_pairs (identity_match_guard) make a pattern never a match.
pattern_factors as (
    select
        patterns.pattern_id,
        max(patterns.pair_count) as pair_count,
        sum(coalesce(ln(trained.m_probability / trained.u_probability), 0)) as pattern_log_factor,
        bool_and({{ identity_match_guard() }}) as passes_guard
    from patterns
    left join trained
        on patterns.comparison = trained.comparison
        and patterns.comparison_level = trained.comparison_level
    group by patterns.pattern_id
),

-- The share of matches among ALL record pairs (the prior), by EM with m and u fixed: pairs
-- outside the candidates are non-matches. Starts at 1 / n (each record about one duplicate).
{{ identity_prior_share_em('records', 'pattern_factors', 10) }}

final as (
    select
        trained.comparison,
        trained.comparison_level,
        trained.m_prior,
        trained.m_probability,
        trained.u_probability,
        log(2, trained.m_probability / trained.u_probability) as match_weight,
        share_10.match_share as prior_match_probability,
        log(2, share_10.match_share / (1 - share_10.match_share)) as prior_weight,
        {{ iterations }} as em_iterations,
        max(trained.m_change) over () as m_change,
        records.record_count as estimated_record_count,
        {{ identity_cache_version() }} as cache_version,
        cast('{{ var("ds") }}' as date) as estimated_on,
        {{ identity_estimated_at_column() }}
    from trained
    cross join records
    cross join share_10
)

select * from final
{%- endif %}

-- One row: does this run re-estimate the stored identity model (u, m, the prior, term
-- frequencies: int_identity__u_probabilities, int_identity__m_probabilities,
-- int_identity__term_frequencies), and why. Nightly runs score new pairs with the stored
-- parameters; they are re-estimated from the whole population when
--   full_refresh     a --full-refresh (unless var identity_reestimate is false),
--   forced           var identity_reestimate is true,
--   no_stored_model  there is none yet (or one of another cache version),
--   age              the stored model is var identity_model_max_age_days (7) days old,
--   growth           the person records grew or shrank by more than
--                    var identity_model_max_growth (0.05) of the count it was estimated on;
--   engine           always on Spark (a kept table would be read while it is replaced).
-- var identity_reestimate false never re-estimates a stored model (a full rebuild with the
-- same parameters, as the incremental-equals-full test does). docs/identity.md.
{%- set forced = var('identity_reestimate', 'auto') %}
{%- set max_age_days = var('identity_model_max_age_days', 7) %}
{%- set max_growth = var('identity_model_max_growth', 0.05) %}
{%- set stored = previous_build_relation('int_identity__m_probabilities', 'estimated_on', any_engine=true) %}

with records as (
    select record_key from {{ ref('int_identity__record_fingerprints') }}
),

population as (
    select count(*) as record_count from records
),

stored as (
    {%- if stored is not none %}
    select
        max(estimated_on) as estimated_on,
        max(estimated_record_count) as estimated_record_count,
        max(cache_version) as cache_version
    from {{ stored }}
    {%- else %}
    select
        cast(null as date) as estimated_on,
        cast(null as bigint) as estimated_record_count,
        cast(null as varchar(64)) as cache_version
    {%- endif %}
),

reasons as (
    select
        population.record_count,
        stored.estimated_on,
        stored.estimated_record_count,
        case
            when stored.estimated_on is null or coalesce(stored.cache_version, '') <> {{ identity_cache_version() }}
                then 'no_stored_model'
            {%- if forced is sameas true or forced in ['true', 'True', 'yes'] %}
            when true then 'forced'
            {%- elif flags.FULL_REFRESH %}
            when true then 'full_refresh'
            {%- endif %}
            {%- if target.type != 'duckdb' %}
            -- Keeping a table means reading it while it is replaced, which Spark refuses.
            when true then 'engine'
            {%- endif %}
            when abs({{ dbt.datediff('stored.estimated_on', "cast('" ~ var('ds') ~ "' as date)", 'day') }})
                >= {{ max_age_days }}
                then 'age'
            when abs(population.record_count - stored.estimated_record_count)
                > {{ max_growth }} * stored.estimated_record_count
                then 'growth'
        end as reason
    from population
    cross join stored
),

final as (
    select
        record_count,
        estimated_on,
        estimated_record_count,
        {%- if forced is sameas false or forced in ['false', 'False', 'no'] %}
        coalesce(reason in ('no_stored_model', 'engine'), false) as reestimate,
        case when reason in ('no_stored_model', 'engine') then reason end as reason,
        {%- else %}
        reason is not null as reestimate,
        reason,
        {%- endif %}
        cast('{{ var("ds") }}' as date) as decided_on
    from reasons
)

select * from final

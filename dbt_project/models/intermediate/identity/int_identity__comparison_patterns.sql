-- One row per (comparison pattern, comparison): the candidate pairs grouped by their vector
-- of comparison levels (kept as columns too, for the training sessions' filters), in long
-- form. Expectation-maximisation runs over these few hundred
-- patterns (weighted by pair_count), not over millions of pairs.
with comparisons as (
    select * from {{ ref('int_identity__pair_comparisons') }}
),

patterns as (
    {{ identity_count_patterns('comparisons') }}
),

keyed as (
    select
        *,
        {%- for comparison in identity_comparison_names() %}
        cast({{ comparison }}_level as varchar(2)){% if not loop.last %} || ',' ||{% endif %}
        {%- endfor %} as pattern_id
    from patterns
),

final as (
    {%- for comparison in identity_comparison_names() %}
    select
        keyed.*,
        '{{ comparison }}' as comparison,
        {{ comparison }}_level as comparison_level
    from keyed
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
)

select * from final
{%- if not identity_reestimate() %}
-- The stored identity model is kept tonight (int_identity__model_schedule): nothing to estimate from.
where false
{%- endif %}

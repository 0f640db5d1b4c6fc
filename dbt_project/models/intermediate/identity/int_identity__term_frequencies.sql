-- One row per (field, value) among person records (crm/shop with at least one name): how
-- often the value occurs, and the term-frequency adjustment an exact agreement on it gets.
-- Agreeing on a value that a share tf of records holds is evidence worth log2(m / tf), not
-- log2(m / u) (u = sum of tf^2 over the field = the chance two random records agree on it):
-- the adjustment log2(u / tf) is negative for "smith" and positive for "quisling".
-- Part of the stored identity model: re-estimated only when int_identity__model_schedule
-- says so, else kept as it is; a value first seen after the estimate has no row, so its
-- exact agreement gets no adjustment (docs/identity.md).
{%- if identity_keep_stored_model() %}
{{ identity_stored_rows() }}
{%- else %}

with records as (
    select * from {{ ref('int_identity__guarded_records') }}
    where source in ('crm', 'shop') and (first_name_clean is not null or last_name_clean is not null)
),

values_long as (
    select 'first_name' as field, first_name_canonical as value from records
    union all
    select 'last_name', last_name_clean from records
    union all
    select 'street', street_clean from records
    union all
    select 'postcode', postcode_clean from records
    union all
    select 'city', city_clean from records
),

counted as (
    select field, value, count(*) as value_count
    from values_long
    where value is not null
    group by field, value
),

frequencies as (
    select
        field,
        value,
        value_count,
        value_count / sum(value_count) over (partition by field) as term_frequency
    from counted
),

final as (
    select
        field,
        value,
        value_count,
        term_frequency,
        sum(term_frequency * term_frequency) over (partition by field) as field_agreement_probability,
        log(2, sum(term_frequency * term_frequency) over (partition by field) / term_frequency)
            as tf_adjustment,
        cast('{{ var("ds") }}' as date) as estimated_on,
        {{ identity_estimated_at_column() }}
    from frequencies
)

select * from final
{%- endif %}

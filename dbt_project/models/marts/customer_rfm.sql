with rfm as (
    select * from {{ ref('int_customers__rfm_scored') }}
),

final as (
    select
        unified_id,
        as_of_date,
        recency_days,
        frequency,
        monetary,
        recency_score,
        frequency_score,
        monetary_score,
        rfm_score,
        rfm_segment
    from rfm
)

select * from final

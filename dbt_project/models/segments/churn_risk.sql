-- Scored as likely to churn with probability above var('confidence_threshold').
with

scores as (
    select * from {{ ref('customer_scores') }}
),

final as (
    select unified_id, p_churn, churn_model_version
    from scores
    where p_churn > {{ var('confidence_threshold') }}
)

select * from final

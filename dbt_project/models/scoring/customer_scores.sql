-- The scores of the logical date var('ds') as a warehouse table (contract: _customer_scores.yml).
with scores as (
    select * from {{ ref('stg_scores__customer_scores') }}
),

final as (
    select
        unified_id,
        p_vip,
        p_churn,
        vip_model_version,
        churn_model_version,
        scored_at,
        next_best_products,
        best_send_hour
    from scores
)

select * from final

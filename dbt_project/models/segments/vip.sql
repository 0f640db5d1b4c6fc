-- Scored as likely VIPs with probability above var('confidence_threshold').
with

scores as (
    select * from {{ ref('customer_scores') }}
),

final as (
    select unified_id, p_vip, vip_model_version
    from scores
    where p_vip > {{ var('confidence_threshold') }}
)

select * from final

-- The scores of the logical date var('ds') as a warehouse table, typed to the contract.
with

scores as (
    select * from {{ scores_relation() }}
),

final as (
    select
        cast(unified_id as string) as unified_id,
        cast(p_vip as double) as p_vip,
        cast(p_churn as double) as p_churn,
        cast(vip_model_version as string) as vip_model_version,
        cast(churn_model_version as string) as churn_model_version,
        cast(scored_at as timestamp) as scored_at,
        cast(next_best_products as {{ type_string_list() }}) as next_best_products,
        cast(best_send_hour as integer) as best_send_hour
    from scores
)

select * from final

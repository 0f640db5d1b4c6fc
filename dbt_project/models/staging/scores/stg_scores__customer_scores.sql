-- The scores of the logical date var('ds') as written by personalization.scoring, typed.
-- Tagged `scores` (dbt_project.yml): built in the segments stage, after scoring wrote the file.
with source as (
    select * from {{ scores_relation() }}
),

renamed as (
    select
        cast(unified_id as string) as unified_id,
        cast(p_vip as double) as p_vip,
        cast(p_churn as double) as p_churn,
        cast(vip_model_version as string) as vip_model_version,
        cast(churn_model_version as string) as churn_model_version,
        cast(scored_at as timestamp) as scored_at,
        cast(next_best_products as {{ type_string_list() }}) as next_best_products,
        cast(best_send_hour as integer) as best_send_hour
    from source
)

select * from renamed

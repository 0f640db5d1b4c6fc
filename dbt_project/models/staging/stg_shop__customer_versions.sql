-- Every delivered version of every shop account, normalised once; stg_shop__customers picks
-- the latest. Incremental by delivery exactly as stg_crm__contact_versions (a rerun of `ds`
-- replaces that day's versions; `--full-refresh` gives the same table).
{{ delivery_versions_config() }}

with source as (
    select * from {{ lake_relation('shop', 'customers') }} as customers
    where {{ lake_ds_window() }}
),

final as (
    select
        cast(customer_id as string) as customer_id,
        {{ person_columns() }},
        cast(created_at as timestamp) as created_at,
        cast(updated_at as timestamp) as updated_at,
        cast(ds as date) as delivered_on,
        cast(_line_number as bigint) as line_number
    from source
    where customer_id is not null
)

select * from final

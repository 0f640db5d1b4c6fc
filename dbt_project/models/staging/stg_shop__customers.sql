with source as (
    select * from {{ lake_relation('shop', 'customers') }} as customers
    where {{ lake_ds_window() }}
),

renamed as (
    select
        cast(customer_id as string) as customer_id,
        {{ person_columns() }},
        cast(created_at as timestamp) as created_at,
        cast(updated_at as timestamp) as updated_at,
        cast(ds as date) as delivered_on,
        cast(_line_number as bigint) as line_number
    from source
    where customer_id is not null
),

latest as (
    {{ latest_version('renamed', 'customer_id') }}
),

final as (
    select {{ star_except(['line_number']) }} from latest
)

select * from final

with source as (
    select * from {{ lake_relation('shop', 'products') }} as products
    where {{ lake_ds_window() }}
),

renamed as (
    select
        cast(sku as string) as sku,
        {{ clean_text('name') }} as name,
        nullif(lower(trim(category)), '') as category,
        cast(price as double) as price,
        coalesce(cast(active as boolean), false) as is_active,
        cast(ds as date) as delivered_on,
        cast(_line_number as bigint) as line_number
    from source
    where sku is not null
),

-- Each delivery is the full catalogue; a SKU keeps its attributes from the newest one
-- it appears in (a SKU dropped from the catalogue keeps its last known row).
latest as (
    select {{ star_except(['qualify_keep']) }} from (
        select *,
            (row_number() over (
        partition by sku order by delivered_on desc, line_number desc
    ) = 1) as qualify_keep
        from renamed
    ) as qualified
    where qualify_keep
),

final as (
    select {{ star_except(['line_number']) }} from latest
)

select * from final

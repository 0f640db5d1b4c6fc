with products as (
    select * from {{ ref('stg_shop__products') }}
),

final as (
    select
        sku,
        name,
        category,
        price,
        is_active
    from products
)

select * from final

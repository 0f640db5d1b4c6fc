-- Every customer with an order, with their named RFM segment (customer_rfm).
with

rfm as (
    select * from {{ ref('customer_rfm') }}
),

final as (
    select
        unified_id,
        cast(rfm_segment as string) as rfm_segment,
        cast(rfm_score as string) as rfm_score,
        cast(recency_score as integer) as recency_score,
        cast(frequency_score as integer) as frequency_score,
        cast(monetary_score as integer) as monetary_score
    from rfm
    where unified_id is not null
)

select * from final

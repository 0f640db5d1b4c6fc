-- RFM as of var `ds` for every person with at least one placed order.
--   recency_days  days from the last placed order to ds (0 if on/after ds)
--   frequency     number of placed orders;  monetary: their revenue
-- Scores are quintiles, ntile(5), 5 = best: most recent, most frequent, highest spend.
-- Ties are broken deterministically (by the other measures, then unified_id).
-- Named segment from r = recency_score and fm = (frequency_score + monetary_score) / 2
-- rounded half up; first match wins:
--   champions r=5, fm>=4 | loyal r in 3..4, fm>=4 | cant_lose r<=2, fm=5 |
--   at_risk r<=2, fm in 3..4 | potential_loyalist r>=4, fm in 2..3 |
--   new_customers r=5, fm=1 | promising r=4, fm=1 | need_attention r=3, fm=3 |
--   about_to_sleep r=3, fm<=2 | lost r=1, fm=1 | hibernating (rest: r=2, fm<=2; r=1, fm=2)
with order_stats as (
    select * from {{ ref('int_customers__order_stats') }}
),

measures as (
    select
        unified_id,
        greatest(
            {{ dbt.datediff("cast(last_order_at as date)", "date '" ~ var('ds') ~ "'", "day") }},
            0
        ) as recency_days,
        order_count as frequency,
        revenue as monetary
    from order_stats
    where order_count >= 1
),

scored as (
    select
        *,
        ntile(5) over (order by recency_days desc, frequency, monetary, unified_id)
            as recency_score,
        ntile(5) over (order by frequency, monetary, recency_days desc, unified_id)
            as frequency_score,
        ntile(5) over (order by monetary, frequency, recency_days desc, unified_id)
            as monetary_score
    from measures
),

combined as (
    select
        *,
        cast(floor((frequency_score + monetary_score + 1) / 2) as integer) as fm_score
    from scored
),

final as (
    select
        unified_id,
        date '{{ var("ds") }}' as as_of_date,
        cast(recency_days as integer) as recency_days,
        cast(frequency as integer) as frequency,
        cast(monetary as double) as monetary,
        cast(recency_score as integer) as recency_score,
        cast(frequency_score as integer) as frequency_score,
        cast(monetary_score as integer) as monetary_score,
        cast(recency_score as string) || cast(frequency_score as string)
            || cast(monetary_score as string) as rfm_score,
        case
            when recency_score = 5 and fm_score >= 4 then 'champions'
            when recency_score in (3, 4) and fm_score >= 4 then 'loyal'
            when recency_score <= 2 and fm_score = 5 then 'cant_lose'
            when recency_score <= 2 and fm_score in (3, 4) then 'at_risk'
            when recency_score >= 4 and fm_score in (2, 3) then 'potential_loyalist'
            when recency_score = 5 and fm_score = 1 then 'new_customers'
            when recency_score = 4 and fm_score = 1 then 'promising'
            when recency_score = 3 and fm_score = 3 then 'need_attention'
            when recency_score = 3 and fm_score <= 2 then 'about_to_sleep'
            when recency_score = 1 and fm_score = 1 then 'lost'
            else 'hibernating'
        end as rfm_segment
    from combined
)

select * from final

-- One row per person: golden record, consent, lifecycle, orders and activity together.
-- Erased persons keep their row (is_erased) with every personal column null; consent can
-- only make someone contactable while they are not erased. The customer_profiles mart
-- publishes it; the content attributes read it.
with order_stats as (
    select * from {{ ref('int_customers__order_stats') }}
),

golden_record as (
    select * from {{ ref('int_customers__golden_record') }}
),

lifecycle as (
    select * from {{ ref('int_customers__lifecycle_staged') }}
),

activity as (
    select * from {{ ref('int_customers__activity') }}
),

joined as (
    select
        order_stats.unified_id,
        coalesce(golden_record.is_erased, false) as is_erased,
        golden_record.email,
        golden_record.email_sha256,
        golden_record.first_name,
        golden_record.last_name,
        golden_record.phone,
        golden_record.street,
        golden_record.city,
        golden_record.postcode,
        golden_record.country,
        golden_record.language,
        golden_record.birth_date,
        golden_record.gender,
        coalesce(golden_record.is_opted_in, false) as is_opted_in,
        golden_record.opted_in_at,
        coalesce(golden_record.is_unsubscribed, false) as is_unsubscribed,
        golden_record.unsubscribed_at,
        golden_record.first_record_at,
        lifecycle.lifecycle_stage,
        order_stats.first_order_at,
        order_stats.last_order_at,
        order_stats.order_count,
        order_stats.revenue,
        activity.first_seen_at as first_event_at,
        activity.last_seen_at as last_event_at,
        activity.last_email_open_at,
        activity.last_email_click_at,
        activity.favourite_category,
        activity.main_device
    from order_stats
    left join golden_record using (unified_id)
    left join lifecycle using (unified_id)
    left join activity using (unified_id)
),

final as (
    select
        unified_id,
        case when not is_erased then email end as email,
        case when not is_erased then email_sha256 end as email_sha256,
        case when not is_erased then first_name end as first_name,
        case when not is_erased then last_name end as last_name,
        case when not is_erased then phone end as phone,
        case when not is_erased then street end as street,
        case when not is_erased then city end as city,
        case when not is_erased then postcode end as postcode,
        case when not is_erased then country end as country,
        case when not is_erased then language end as language,
        case when not is_erased then birth_date end as birth_date,
        case when not is_erased then gender end as gender,
        is_opted_in and not is_erased as is_opted_in,
        case when not is_erased then opted_in_at end as opted_in_at,
        is_unsubscribed,
        case when not is_erased then unsubscribed_at end as unsubscribed_at,
        is_erased,
        is_opted_in and not is_unsubscribed and not is_erased and email is not null
            as is_contactable,
        lifecycle_stage,
        first_order_at,
        last_order_at,
        order_count,
        revenue,
        -- Seen = any site/email activity or an order.
        greatest(last_event_at, last_order_at) as last_seen_at,
        last_email_open_at,
        last_email_click_at,
        favourite_category,
        main_device,
        least(first_event_at, first_order_at, first_record_at) as first_seen_at,
        date '{{ var("ds") }}' as as_of_date
    from joined
)

select * from final

-- One row per person: golden record, consent, lifecycle, orders and activity together.
-- Erased persons keep their row (is_erased) with every personal column null; consent can
-- only make someone contactable while they are not erased. The customer_profiles mart
-- publishes it (adding the night's as_of_date); the content attributes read it.
-- Incremental (exception to the intermediate-as-tables rule): a person's row depends only on
-- their rows of the four inputs, so a night recomputes only the persons whose fingerprint of
-- those changed and keeps the others' rows (macros/person_fingerprint.sql). Golden record
-- and activity carry the fingerprint of their own inputs, which stands for their row.
-- sync_all_columns: the table built before lost `as_of_date` (now the view's) when it gained
-- the fingerprint.
{{ person_fingerprint_config() }}
{{ config(on_schema_change='sync_all_columns') }}

-- The inputs are read where they are used (every person's fingerprint, then the changed
-- persons' rows), not through CTEs read twice, which DuckDB would copy whole.
-- What a person's row is computed from: a few narrow columns per input.
with fingerprints as (
    select inputs.unified_id, {{ row_hash('inputs') }} as input_fingerprint
    from (
        select
            order_stats.unified_id,
            order_stats.first_order_at,
            order_stats.last_order_at,
            order_stats.order_count,
            order_stats.revenue,
            golden_record.input_fingerprint as golden_record_fingerprint,
            lifecycle.lifecycle_stage,
            activity.input_fingerprint as activity_fingerprint
        from {{ ref('int_customers__order_stats') }} as order_stats
        left join {{ ref('int_customers__golden_record') }} as golden_record using (unified_id)
        left join {{ ref('int_customers__lifecycle_staged') }} as lifecycle using (unified_id)
        left join {{ ref('int_customers__activity') }} as activity using (unified_id)
    ) as inputs
),

changed as (
    {{ changed_persons('fingerprints') }}
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
        activity.main_device,
        fingerprints.input_fingerprint
    from {{ ref('int_customers__order_stats') }} as order_stats
    inner join fingerprints using (unified_id)
    left join {{ ref('int_customers__golden_record') }} as golden_record using (unified_id)
    left join {{ ref('int_customers__lifecycle_staged') }} as lifecycle using (unified_id)
    left join {{ ref('int_customers__activity') }} as activity using (unified_id)
    where order_stats.unified_id in (select changed.unified_id from changed)
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
        input_fingerprint
    from joined
)

select * from final
{{ gone_persons('fingerprints') }}

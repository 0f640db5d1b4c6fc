-- One row per person (int_customers__profiles): the golden record, consent, lifecycle,
-- orders and activity. Erased persons keep their row with every personal column null.
-- A view (exception to the marts-as-tables rule, like customer_events): a table here would
-- copy every person's row every night (≈ 2 s at 1M people). On Spark a table (the serving
-- copy takes tables' files).
{{ config(materialized=served_view()) }}

with profiles as (
    select * from {{ ref('int_customers__profiles') }}
),

final as (
    select
        unified_id,
        email,
        email_sha256,
        first_name,
        last_name,
        phone,
        street,
        city,
        postcode,
        country,
        language,
        birth_date,
        gender,
        is_opted_in,
        opted_in_at,
        is_unsubscribed,
        unsubscribed_at,
        is_erased,
        is_contactable,
        lifecycle_stage,
        first_order_at,
        last_order_at,
        order_count,
        revenue,
        last_seen_at,
        last_email_open_at,
        last_email_click_at,
        favourite_category,
        main_device,
        first_seen_at,
        as_of_date
    from profiles
)

select * from final

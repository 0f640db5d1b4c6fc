-- Incremental (exception to the staging-as-views rule): orders are append-mostly and years
-- of them arrive in the first delivery, so a nightly run reads only the new partition(s).
-- delete+insert on order_id: a re-delivered order (status change) replaces its old row, and
-- rerunning the same ds replaces that day's rows instead of appending them twice; an order
-- the rerun's delivery no longer has falls back to its earlier version or leaves
-- (reloaded_orders, macros/lake.sql).
{{ config(
    materialized=keyed_incremental(),
    incremental_strategy='delete+insert',
    unique_key='order_id',
    on_schema_change='fail',
    post_hook="{{ drop_placeholders() }}"
) }}
{%- set lower_bound = incremental_lower_bound() if is_incremental() else none %}
{%- set reloaded = reloaded_orders(lower_bound) if is_incremental() else none %}

with source as (
    {{ order_deliveries('orders', reloaded, lower_bound) }}
),

renamed as (
    select
        cast(order_id as string) as order_id,
        cast(customer_id as string) as customer_id,
        {{ clean_email('email') }} as email,
        {{ is_valid_email('email') }} as is_email_valid,
        {{ normalize_email('email') }} as email_normalized,
        {{ email_sha256('email') }} as email_sha256,
        customer_id is null as is_guest_checkout,
        cast(ordered_at as timestamp) as ordered_at,
        cast(cast(ordered_at as timestamp) as date) as ordered_on,
        lower(trim(status)) as status,
        upper(trim(currency)) as currency,
        cast(total_amount as double) as total_amount,
        cast(ds as date) as delivered_on,
        cast(_line_number as bigint) as line_number
    from source
    where order_id is not null
),

-- The latest delivery of an order wins (then the later line of that file).
latest as (
    select {{ star_except(['qualify_keep']) }} from (
        select *,
            (row_number() over (
        partition by order_id order by delivered_on desc, line_number desc
    ) = 1) as qualify_keep
        from renamed
    ) as qualified
    where qualify_keep
),

final as (
    select {{ star_except(['line_number']) }} from latest
    {{ order_placeholders(reloaded, 'latest') }}
)

select * from final

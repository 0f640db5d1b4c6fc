-- Incremental like stg_shop__orders. unique_key is order_id (not the line): delete+insert
-- drops ALL old lines of a re-delivered order before inserting its new lines, so an order
-- that lost a line on re-delivery loses it here too. A rerun's order that its delivery no
-- longer has falls back to the lines of its earlier version, or leaves (reloaded_orders).
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
    {{ order_deliveries('order_items', reloaded, lower_bound) }}
),

renamed as (
    select
        cast(order_id as string) as order_id,
        cast(line_number as integer) as line_number,
        cast(sku as string) as sku,
        cast(quantity as integer) as quantity,
        cast(unit_price as double) as unit_price,
        cast(quantity as integer) * cast(unit_price as double) as line_amount,
        cast(ds as date) as delivered_on,
        cast(_line_number as bigint) as file_line_number
    from source
    where order_id is not null
),

-- Only the lines of each order's latest version count: its latest delivery, and within that
-- file its last line (an order delivered twice in one file, e.g. placed then cancelled, must
-- not mix the lines of both versions).
latest_delivery as (
    select {{ star_except(['qualify_keep']) }} from (
        select *,
            (delivered_on = max(delivered_on) over (partition by order_id)) as qualify_keep
        from renamed
    ) as qualified
    where qualify_keep
),

latest_version as (
    select {{ star_except(['qualify_keep']) }} from (
        select *,
            (file_line_number = max(file_line_number) over (partition by order_id)) as qualify_keep
        from latest_delivery
    ) as qualified
    where qualify_keep
),

final as (
    select {{ star_except(['file_line_number']) }} from latest_version
    {{ order_placeholders(reloaded, 'latest_version') }}
)

select * from final

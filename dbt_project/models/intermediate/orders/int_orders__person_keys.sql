-- How each order reaches its person. Through its shop account when the warehouse holds that
-- account; else through the order's own email, like a guest checkout (the account row was
-- quarantined at the door, or the shop never delivered it: one bad account row must not cost
-- the order); else nowhere, and the order is quarantined with a reason (quarantined_orders).
-- Decided here, in dbt, and not in extract: only the warehouse knows every account delivered
-- so far, and an account that arrives (or is corrected) later reclaims its orders.
-- Incremental (exception to the intermediate-as-tables rule): a night re-keys the orders
-- delivered since its last build, the orders of accounts delivered since (they may reclaim
-- them), and shop-keyed orders whose account is gone; `--full-refresh` gives the same table.
{{ config(
    materialized=keyed_incremental(),
    incremental_strategy='delete+insert',
    unique_key='order_id',
    on_schema_change='fail',
    post_hook="{{ drop_placeholders() }}"
) }}

{%- set lower_bound = incremental_lower_bound() if is_incremental() else none %}
{%- set reloaded = reloaded_orders(lower_bound) if is_incremental() else none %}

with
{% if is_incremental() -%}
changed as (
    select order_id from {{ ref('stg_shop__orders') }}
    where delivered_on > date '{{ lower_bound }}'
    union
    select order_id from {{ ref('stg_shop__orders') }}
    where customer_id in (
        select customer_id from {{ ref('stg_shop__customers') }}
        where delivered_on > date '{{ lower_bound }}')
    union
    -- erasure removes an account's orders with it; for exactness all the same
    select order_id from {{ this }}
    where person_source = 'shop'
      and customer_id not in (select customer_id from {{ ref('stg_shop__customers') }})
    {%- if reloaded %}
    union
    -- a rerun: the orders of the reloaded deliveries (their version may be an earlier one now)
    {{ reloaded }}
    {%- endif %}
),

{% endif -%}
orders as (
    select * from {{ ref('stg_shop__orders') }}
    {%- if is_incremental() %}
    where order_id in (select changed.order_id from changed)
    {%- endif %}
),

customers as (
    select customer_id from {{ ref('stg_shop__customers') }}
),

keyed as (
    select
        orders.order_id,
        orders.customer_id,
        orders.email,
        orders.is_email_valid,
        orders.email_normalized,
        orders.email_sha256,
        orders.ordered_at,
        orders.delivered_on,
        customers.customer_id is not null as has_account_record
    from orders
    left join customers on orders.customer_id = customers.customer_id
),

final as (
    select
        order_id,
        customer_id,
        email,
        is_email_valid,
        email_normalized,
        email_sha256,
        ordered_at,
        delivered_on,
        case
            when has_account_record then 'shop'
            when email_normalized is not null then 'guest'
        end as person_source,
        case
            when has_account_record then customer_id
            when email_normalized is not null then email_normalized
        end as person_source_id,
        case
            when has_account_record or email_normalized is not null then null
            when customer_id is not null then 'account_quarantined'
            else 'guest_without_email'
        end as quarantine_reason
    from keyed
    {%- if reloaded %}
    union all by name
    -- a reloaded order no delivery has any more: a placeholder (drop_placeholders)
    select order_id from changed
    where order_id not in (select order_id from {{ ref('stg_shop__orders') }})
    {%- endif %}
)

select * from final

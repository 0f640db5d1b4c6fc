-- One row per delivery and distinct (cookie, shop account, email hash, checkout order id)
-- seen together on its pixel events, with the last time: the one pass over the events that
-- identity needs. Pixel records (int_identity__records), shared cookies
-- (int_identity__junk_values) and the cookie links (int_identity__deterministic_edges) read
-- these rows, not the events.
-- Incremental on DuckDB (an exception to the folder's tables; on Spark a table rebuilt
-- whole), as int_events__resolved: a night aggregates only the deliveries after the last one
-- it holds; the pre-hook drops the rows of those deliveries (a rerun replaces them) and of
-- deliveries retention removed from stg_pixel__events. The order id is not named order_id:
-- erasure then deletes exactly the rows whose events it deletes (by cookie, account, hash).
-- Stamped (changed_at, changed_rows.sql): pixel records recompute only the cookies of rows
-- appended since they last ran (int_identity__records); the column is added in place.
{{ config(
    materialized=keyed_incremental(),
    incremental_strategy='append',
    on_schema_change='append_new_columns',
    pre_hook="{{ event_mart_pre_hook(up_to_ds=false) }}"
) }}

{%- set lower_bound = incremental_lower_bound() if is_incremental() else none %}

with events as (
    select * from {{ ref('stg_pixel__events') }}
    {%- if is_incremental() %}
    where delivered_on > date '{{ lower_bound }}'
    {%- endif %}
),

keyed as (
    select
        delivered_on,
        anonymous_id::string as anonymous_id,
        customer_id::string as customer_id,
        email_sha256,
        -- The checkout-complete page carries the order id (`?order=...`).
        case
            when contains(url, 'order=') then regexp_extract(url, '[?&]order=([^&#]+)', 1)
        end as checkout_order_id,
        occurred_at
    from events
    where anonymous_id is not null
),

final as (
    select
        delivered_on,
        anonymous_id,
        customer_id,
        email_sha256,
        checkout_order_id,
        max(occurred_at) as last_occurred_at,
        {{ changed_at_column() }}
    from keyed
    group by delivered_on, anonymous_id, customer_id, email_sha256, checkout_order_id
)

select * from final

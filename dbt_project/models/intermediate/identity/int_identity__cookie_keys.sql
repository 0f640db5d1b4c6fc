-- The distinct (cookie, shop account, email hash, checkout order id) seen together on the
-- loaded pixel events, with the delivery they were seen in and the last time: the one pass
-- over the events that identity needs. Pixel records (int_identity__records), shared cookies
-- (int_identity__junk_values) and the cookie links (int_identity__deterministic_edges) read
-- these rows, not the events.
-- Grain: for the deliveries up to the newest one before `ds`, one row per combination (its
-- latest delivery); for the deliveries after it (normally `ds`), one row per delivery and
-- combination. So the table grows with the combinations, not with the days of history (a
-- cookie that visits every day keeps one row), and a rerun of `ds` still replaces just that
-- delivery's rows: they fold the older rows of their combinations only the next night
-- (docs/identity.md, "Incremental blocks and cookies").
-- Incremental on DuckDB (an exception to the folder's tables; on Spark a table rebuilt
-- whole), as int_events__resolved: a night aggregates only the deliveries after the last one
-- it holds before `ds`; the pre-hook first drops the rows of those deliveries (a rerun
-- replaces them) and of deliveries retention removed from stg_pixel__events, and the
-- post-hook folds what is now before the bound. A rerun of an older date, when later
-- deliveries are loaded, rebuilds the table (what it folded since is not kept). The order id
-- is not named order_id: erasure then deletes exactly the rows whose events it deletes (by
-- cookie, account, hash). Stamped (changed_at, changed_rows.sql): pixel records recompute
-- only the cookies of rows appended since they last ran (int_identity__records).
{{ config(
    materialized=keyed_incremental(),
    incremental_strategy='append',
    on_schema_change='append_new_columns',
    pre_hook="{{ cookie_keys_pre_hook() }}",
    post_hook="{{ cookie_keys_fold() }}"
) }}

{%- set lower_bound = none if cookie_keys_rebuilt() else incremental_lower_bound() %}

with events as (
    select * from {{ ref('stg_pixel__events') }}
    {%- if lower_bound is not none %}
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

per_delivery as (
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
),
{%- if lower_bound is none %}

-- A whole build folds as the nights do: up to the newest delivery before `ds`, only the
-- latest row of each combination.
bound as (
    select coalesce(max(delivered_on), date '1900-01-01') as folded_through
    from {{ ref('stg_pixel__events') }}
    where delivered_on < date '{{ var("ds") }}'
),

final as (
    select {{ star_except(['is_latest', 'is_folded']) }}
    from (
        select
            per_delivery.*,
            per_delivery.delivered_on <= bound.folded_through as is_folded,
            row_number() over (
                partition by per_delivery.delivered_on <= bound.folded_through,
                    per_delivery.anonymous_id, per_delivery.customer_id,
                    per_delivery.email_sha256, per_delivery.checkout_order_id
                order by per_delivery.delivered_on desc
            ) = 1 as is_latest
        from per_delivery
        cross join bound
    ) as ranked
    where not is_folded or is_latest
)
{%- else %}

final as (
    select * from per_delivery
)
{%- endif %}

select * from final

-- One row per person and category: how many of their product views were of that category.
-- Incremental (exception to the intermediate-as-tables rule): a night recomputes only the
-- persons whose events changed (macros/incremental_events.sql).
{{ config(
    materialized=keyed_incremental(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_touched_persons() }}"
) }}
-- depends_on: {{ ref('int_events__key_persons') }}
-- depends_on: {{ ref('int_events__sku_categories') }}
-- depends_on: {{ ref('int_events__expired_persons') }}

{%- set lower_bound = incremental_lower_bound('last_delivered_on') if is_incremental() else none %}

with
{% if is_incremental() %}
touched as (
    {{ touched_event_persons(lower_bound) }}
),
{% endif %}

events as (
    select * from {{ ref('customer_events') }}
    where unified_id is not null
    {% if is_incremental() -%}
      and unified_id in (select unified_id from touched)
    {%- endif %}
),

final as (
    select
        unified_id,
        category,
        count(*) as views,
        max(delivered_on) as last_delivered_on
    from events
    where event_type = 'product_view' and category is not null
    group by unified_id, category
)

select * from final

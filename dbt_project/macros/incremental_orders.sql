{#-
  Incremental order models (docs/performance.md). int_orders__resolved and
  int_order_items__resolved re-resolve only the orders whose rows can change since their last
  build (a per-run watermark, `run_watermark_bound()`: without one, or on a rerun, every
  order): orders and lines delivered since, orders whose person differs from the one their
  rows hold (identity merged or split it, or its shop account arrived), orders that newly
  reach a person or no longer do, and (lines) orders with a sku whose category changed.
  The pre-hooks (`write_watermark_touched`, macros/incremental_events.sql) write that set to
  `<model>__touched` and delete its rows; the model appends the orders' rows anew; the
  post-hooks drop the set and record the run.
-#}

{#- The orders of `model` ('orders': int_orders__resolved, 'items':
    int_order_items__resolved) that change since `lower_bound` (a date literal string). The
    person comparison covers every order: one join over two narrow columns (the previous
    person is what the rows hold, so a failed or repeated night cannot lose a change). -#}
{% macro touched_orders(model, lower_bound) -%}
    select order_id from {{ ref('stg_shop__orders') }}
    where delivered_on > date '{{ lower_bound }}'
    union
    select order_id from {{ ref('stg_shop__order_items') }}
    where delivered_on > date '{{ lower_bound }}'
    union
    {%- if model == 'orders' %}
    select coalesce(expected.order_id, held.order_id)
    from (
        select person_keys.order_id, id_assignment.unified_id
        from {{ ref('int_orders__person_keys') }} as person_keys
        left join {{ ref('int_identity__id_assignment') }} as id_assignment
            on person_keys.person_source = id_assignment.source
            and person_keys.person_source_id = id_assignment.source_id
        where person_keys.quarantine_reason is null
    ) as expected
    full join (select order_id, unified_id from {{ this }}) as held
        on expected.order_id = held.order_id
    where expected.order_id is null or held.order_id is null
       or expected.unified_id is distinct from held.unified_id
    {%- else %}
    select coalesce(expected.order_id, held.order_id)
    from (
        select order_id, unified_id from {{ ref('int_orders__resolved') }}
        -- an order without lines has no rows here
        where order_id in (select order_id from {{ ref('stg_shop__order_items') }})
    ) as expected
    full join (select distinct order_id, unified_id from {{ this }}) as held
        on expected.order_id = held.order_id
    where expected.order_id is null or held.order_id is null
       or expected.unified_id is distinct from held.unified_id
    union
    select order_id from {{ this }}
    where sku in (
        select sku from {{ ref('int_events__sku_categories') }}
        where changed_on > date '{{ lower_bound }}')
    {%- endif %}
{%- endmacro %}

{#- `column` is a touched order (always true without a bound). -#}
{% macro in_touched_orders(column='order_id') -%}
  {%- if run_watermark_bound() is not none -%}
    {{ column }} in (select touched.order_id from {{ touched_relation() }} as touched)
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}

{#- Config of an incremental order model (`model`: 'orders' or 'items'); records the models
    the touched set reads, which dbt cannot see at parse time. -#}
{% macro incremental_orders_config(model) -%}
  {{ watermark_incremental_config(model) }}
  {%- do ref('stg_shop__orders') -%}
  {%- do ref('stg_shop__order_items') -%}
  {%- if model == 'orders' %}
    {%- do ref('int_orders__person_keys') -%}
    {%- do ref('int_identity__id_assignment') -%}
  {%- else %}
    {%- do ref('int_orders__resolved') -%}
    {%- do ref('int_events__sku_categories') -%}
  {%- endif %}
{%- endmacro %}

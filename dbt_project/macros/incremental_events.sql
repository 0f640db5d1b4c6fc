{#-
  Incremental event marts (docs/performance.md). customer_events writes the events of new
  deliveries and re-writes those whose person or category changed; the marts built from it
  (customer_engagement_daily, int_customers__event_activity, int_customers__category_views)
  recompute only the persons those events belong to, and the persons they left.
-#}

{#- The persons whose events changed since `lower_bound` (a date literal string): events of
    deliveries after it, key pairs identity moved (to and from whom), events of skus whose
    category changed. -#}
{% macro touched_event_persons(lower_bound) -%}
    select unified_id from {{ ref('customer_events') }}
    where delivered_on > date '{{ lower_bound }}'
      and delivered_on <= date '{{ var("ds") }}' and unified_id is not null
    union
    select unified_id from {{ ref('int_events__key_persons') }}
    where remapped_on > date '{{ lower_bound }}' and unified_id is not null
    union
    select previous_unified_id from {{ ref('int_events__key_persons') }}
    where remapped_on > date '{{ lower_bound }}' and previous_unified_id is not null
    union
    select unified_id from {{ ref('customer_events') }}
    where unified_id is not null and sku in (
        select sku from {{ ref('int_events__sku_categories') }}
        where changed_on > date '{{ lower_bound }}')
    union
    select unified_id from {{ ref('int_events__expired_persons') }}
{%- endmacro %}


{#- Pre-hook of a per-person event mart: in an incremental run, delete every row of the
    touched persons (the model then appends their recomputed rows; a person who no longer
    has events keeps none). -#}
{% macro delete_touched_persons() -%}
  {%- if is_incremental() -%}
    delete from {{ this }} where unified_id in (
        {{ touched_event_persons(incremental_lower_bound('last_delivered_on')) }})
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}


{#- Pre-hook of customer_events: in an incremental run, drop the rows of the deliveries
    about to be reloaded (a rerun of `ds` replaces them, also when an event left the
    delivery) and of deliveries no longer in stg_pixel__events (expired by retention). -#}
{% macro event_mart_pre_hook() -%}
  {%- if is_incremental() -%}
    delete from {{ this }}
    where (delivered_on > date '{{ incremental_lower_bound() }}'
           and delivered_on <= date '{{ var("ds") }}')
       or delivered_on < coalesce(
           (select min(delivered_on) from {{ ref('stg_pixel__events') }}), date '9999-12-31')
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}

{#-
  Incremental event marts (docs/performance.md). int_events__resolved (published as the
  customer_events view) writes the events of new deliveries and re-writes those whose person
  or category changed; the marts built from it
  (customer_engagement_daily, int_customers__event_activity, int_customers__category_views)
  recompute only the persons those events belong to, and the persons they left.
-#}

{#- The persons whose events changed since `lower_bound` (a date literal string): events of
    deliveries after it, key pairs identity moved (to and from whom), events of skus whose
    category changed. -#}
{% macro touched_event_persons(lower_bound) -%}
    select unified_id from {{ ref('int_events__resolved') }}
    where delivered_on > date '{{ lower_bound }}'
      and delivered_on <= date '{{ var("ds") }}' and unified_id is not null
    union
    select unified_id from {{ ref('int_events__key_persons') }}
    where remapped_on > date '{{ lower_bound }}' and unified_id is not null
    union
    select previous_unified_id from {{ ref('int_events__key_persons') }}
    where remapped_on > date '{{ lower_bound }}' and previous_unified_id is not null
    union
    select unified_id from {{ ref('int_events__resolved') }}
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


{#- Pre-hook of int_events__resolved: in an incremental run, drop the rows of the deliveries
    about to be reloaded (a rerun of `ds` replaces them, also when an event left the
    delivery) and of deliveries no longer in stg_pixel__events (expired by retention).
    up_to_ds=false (int_identity__cookie_keys, which holds every loaded delivery, as its full
    rebuild does): every delivery after the last one before `ds` is reloaded. -#}
{% macro event_mart_pre_hook(up_to_ds=true) -%}
  {%- if is_incremental() -%}
    delete from {{ this }}
    where (delivered_on > date '{{ incremental_lower_bound() }}'
           {%- if up_to_ds %}
           and delivered_on <= date '{{ var("ds") }}'
           {%- endif %})
       or delivered_on < coalesce(
           (select min(delivered_on) from {{ ref('stg_pixel__events') }}), date '9999-12-31')
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}


{#- The config of a per-person event model (int_customers__event_activity,
    int_customers__category_views, customer_engagement_daily): incremental append after the
    pre-hook deleted the touched persons' rows. Also records the models the touched-person
    query reads, which dbt cannot see at parse time (it runs only in incremental runs). -#}
{% macro per_person_event_config() -%}
  {{ config(
      materialized=keyed_incremental(),
      incremental_strategy='append',
      on_schema_change='fail',
      pre_hook="{{ delete_touched_persons() }}"
  ) }}
  {%- do ref('int_events__key_persons') -%}
  {%- do ref('int_events__sku_categories') -%}
  {%- do ref('int_events__expired_persons') -%}
{%- endmacro %}


{#- The events a per-person event model aggregates: those with a person, and in an
    incremental run only the touched persons' (all their events, so each is recomputed
    whole). Its `last_delivered_on` column is how the next run finds its lower bound. -#}
{% macro touched_person_events() -%}
    select * from {{ ref('int_events__resolved') }}
    where unified_id is not null
    {%- if is_incremental() %}
      and unified_id in ({{ touched_event_persons(incremental_lower_bound('last_delivered_on')) }})
    {%- endif %}
{%- endmacro %}

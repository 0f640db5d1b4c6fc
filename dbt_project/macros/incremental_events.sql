{#-
  Incremental event marts (docs/performance.md). int_events__resolved (published as the
  customer_events view) writes the events of new deliveries and re-writes those whose person
  or category changed; the marts built from it
  (customer_engagement_daily, int_customers__event_activity, int_customers__category_views)
  recompute only the persons those events belong to, and the persons they left.
-#}

{#- The persons whose old events changed since `lower_bound` (a date literal string): both
    ends of the key pairs identity moved, and the persons retention expired events of. -#}
{% macro moved_event_persons(lower_bound) -%}
    select unified_id from {{ ref('int_events__key_persons') }}
    where remapped_on > date '{{ lower_bound }}' and unified_id is not null
    union
    select previous_unified_id from {{ ref('int_events__key_persons') }}
    where remapped_on > date '{{ lower_bound }}' and previous_unified_id is not null
    union
    select unified_id from {{ ref('int_events__expired_persons') }}
{%- endmacro %}


{#- The persons whose events changed since `lower_bound`: those of events of deliveries
    after it, the moved persons above, the persons with events of skus whose category
    changed. -#}
{% macro touched_event_persons(lower_bound) -%}
    select unified_id from {{ ref('int_events__resolved') }}
    where delivered_on > date '{{ lower_bound }}'
      and delivered_on <= date '{{ var("ds") }}' and unified_id is not null
    union
    {{ moved_event_persons(lower_bound) }}
    union
    select unified_id from {{ ref('int_events__resolved') }}
    where unified_id is not null and sku in (
        select sku from {{ ref('int_events__sku_categories') }}
        where changed_on > date '{{ lower_bound }}')
{%- endmacro %}


{#- The (person, day) rows of customer_engagement_daily that changed since `lower_bound`: the
    days of events of deliveries after it, the rows an earlier run of those deliveries wrote
    (a rerun whose delivery lost an event), and every day, before and after, of the moved
    persons. Categories do not count there, so re-categorised skus touch nothing. A new
    delivery touches a few days of its persons, not their whole history. One scan of the
    events and one of the mart, each with both conditions. -#}
{% macro touched_event_days(lower_bound) -%}
    select unified_id, cast(occurred_at as date) as activity_on
    from {{ ref('int_events__resolved') }}
    where unified_id is not null
      and ((delivered_on > date '{{ lower_bound }}' and delivered_on <= date '{{ var("ds") }}')
           or unified_id in ({{ moved_event_persons(lower_bound) }}))
    union
    select unified_id, activity_on from {{ this }}
    where last_delivered_on > date '{{ lower_bound }}'
       or unified_id in ({{ moved_event_persons(lower_bound) }})
{%- endmacro %}


{#- Where a per-person event mart keeps its touched set during a run: `<mart>__touched`,
    written once by the first pre-hook (before the second deletes the rows it names), read
    by the body, dropped by the post-hook. Computing it once instead of in the delete and
    again in the body also keeps both on the same set. -#}
{% macro touched_relation() -%}
  {{ return(this.incorporate(path={"identifier": this.identifier ~ '__touched'})) }}
{%- endmacro %}


{#- Pre-hooks of a per-person event mart (`key`: 'person', or 'day' for one row per person
    and day): in an incremental run, write the touched set, then delete every row it names
    (the model then appends their recomputed rows; a person or day that no longer has
    events keeps none). -#}
{% macro write_touched(key) -%}
  {%- if is_incremental() -%}
    {%- set lower_bound = incremental_lower_bound('last_delivered_on') -%}
    create or replace table {{ touched_relation() }} as
    {% if key == 'day' -%}
        {{ touched_event_days(lower_bound) }}
    {%- else -%}
        {{ touched_event_persons(lower_bound) }}
    {%- endif %}
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}

{% macro delete_touched(key) -%}
  {%- if is_incremental() -%}
    {%- set columns = 'unified_id, activity_on' if key == 'day' else 'unified_id' -%}
    delete from {{ this }}
    where ({{ columns }}) in (select {{ columns }} from {{ touched_relation() }})
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}

{% macro drop_touched() -%}
  {%- if is_incremental() -%}
    drop table if exists {{ touched_relation() }}
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
    int_customers__category_views: key 'person'; customer_engagement_daily: key 'day'):
    incremental append after the pre-hooks deleted the touched rows. Also records the models
    the touched set reads, which dbt cannot see at parse time (it runs only in incremental
    runs). -#}
{% macro per_person_event_config(key='person') -%}
  {{ config(
      materialized=keyed_incremental(),
      incremental_strategy='append',
      on_schema_change='fail',
      pre_hook=["{{ write_touched('" ~ key ~ "') }}", "{{ delete_touched('" ~ key ~ "') }}"],
      post_hook="{{ drop_touched() }}"
  ) }}
  {%- do ref('int_events__key_persons') -%}
  {%- do ref('int_events__sku_categories') -%}
  {%- do ref('int_events__expired_persons') -%}
{%- endmacro %}


{#- The events a per-person event model aggregates: those with a person, and in an
    incremental run only those of the touched set the pre-hook wrote (all of a touched
    person's events, or all of a touched day's), so each row is recomputed whole. Its
    `last_delivered_on` column is how the next run finds its lower bound. -#}
{% macro touched_person_events(key='person') -%}
    {%- if is_incremental() and key == 'day' %}
    select events.* from {{ ref('int_events__resolved') }} as events
    semi join {{ touched_relation() }} as touched
        on events.unified_id = touched.unified_id
        and cast(events.occurred_at as date) = touched.activity_on
    {%- else %}
    select * from {{ ref('int_events__resolved') }}
    where unified_id is not null
    {%- if is_incremental() %}
      and unified_id in (select unified_id from {{ touched_relation() }})
    {%- endif %}
    {%- endif %}
{%- endmacro %}

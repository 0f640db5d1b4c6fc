{#-
  Incremental event marts (docs/performance.md). int_events__resolved (published as the
  customer_events view) writes the events of new deliveries and re-writes those whose person
  or category changed; the marts built from it recompute or update only the persons those
  events belong to, and the persons they left:
  - customer_engagement_daily recomputes touched (person, day) rows;
  - int_customers__device_activity and int_customers__category_views add the new
    deliveries' events to the rows they already have (counts add up, min/max combine) and
    recompute from the whole history only the persons whose old events changed;
  - int_customers__event_activity re-aggregates the changed persons' device rows.
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


{#- The persons of a delta model (int_customers__device_activity,
    int_customers__category_views) whose rows change since `lower_bound`, with `from_history`:
    true for those recomputed from all their events: the moved persons above, with
    `by_category` the persons with events of skus whose category changed, and the persons
    with a row that already counts a delivery after the bound (a rerun of `ds` re-writes that
    delivery's events: adding them again would count them twice, and an event that left the
    delivery must leave the row); false for the other persons of events of deliveries after
    the bound, whose rows only gain those events. -#}
{% macro delta_event_persons(lower_bound, by_category) -%}
    with from_history as (
        {{ moved_event_persons(lower_bound) }}
        union
        select unified_id from {{ this }}
        where last_delivered_on > date '{{ lower_bound }}'
        {%- if by_category %}
        union
        select unified_id from {{ ref('int_events__resolved') }}
        where unified_id is not null and sku in (
            select sku from {{ ref('int_events__sku_categories') }}
            where changed_on > date '{{ lower_bound }}')
        {%- endif %}
    ),

    delivered as (
        select distinct unified_id from {{ ref('int_events__resolved') }}
        where delivered_on > date '{{ lower_bound }}'
          and delivered_on <= date '{{ var("ds") }}' and unified_id is not null
    )

    select unified_id, true as from_history from from_history
    union all
    select delivered.unified_id, false as from_history
    from delivered
    left join from_history on delivered.unified_id = from_history.unified_id
    where from_history.unified_id is null
{%- endmacro %}


{#- The persons of a model aggregated from a delta model's rows (int_customers__event_activity
    from int_customers__device_activity: `detail`) whose row changes since `lower_bound`:
    those with a detail row that counts a delivery after the bound, those whose own row
    does (a rerun whose delivery lost their events), and the moved persons (their detail
    rows were recomputed, keeping the old deliveries' dates). -#}
{% macro rollup_event_persons(lower_bound, detail) -%}
    select unified_id from {{ ref(detail) }}
    where last_delivered_on > date '{{ lower_bound }}'
    union
    select unified_id from {{ this }}
    where last_delivered_on > date '{{ lower_bound }}'
    union
    {{ moved_event_persons(lower_bound) }}
{%- endmacro %}


{#- The (person, day) rows of customer_engagement_daily that changed since `lower_bound`: the
    days of events of deliveries after it, the rows an earlier run of those deliveries wrote
    (a rerun whose delivery lost an event), and every day, before and after, of the moved
    persons. Categories do not count there, so re-categorised skus touch nothing. A new
    delivery touches a few days of its persons, not their whole history. Each condition is
    its own scan: the deliveries' events are found by the row groups' delivered_on, which an
    `or` with the moved persons would turn into a read of every event (1M people, 2 moved
    persons: 1.4 -> 0.8 s; 5k: 1.4 -> 1.25 s; 70k: the same). -#}
{% macro touched_event_days(lower_bound) -%}
    select unified_id, cast(occurred_at as date) as activity_on
    from {{ ref('int_events__resolved') }}
    where unified_id is not null
      and delivered_on > date '{{ lower_bound }}' and delivered_on <= date '{{ var("ds") }}'
    union
    select unified_id, cast(occurred_at as date) as activity_on
    from {{ ref('int_events__resolved') }}
    where unified_id in ({{ moved_event_persons(lower_bound) }})
    union
    select unified_id, activity_on from {{ this }}
    where last_delivered_on > date '{{ lower_bound }}'
    union
    select unified_id, activity_on from {{ this }}
    where unified_id in ({{ moved_event_persons(lower_bound) }})
{%- endmacro %}


{#- Where a per-person event mart keeps its touched set during a run: `<mart>__touched`,
    written once by the first pre-hook (before another deletes the rows it names), read
    by the body, dropped by the post-hook. Computing it once instead of in the delete and
    again in the body also keeps both on the same set. A delta model also keeps there
    (`<mart>__previous`) the rows its new events are added to. -#}
{% macro touched_relation(suffix='touched') -%}
  {{ return(this.incorporate(path={"identifier": this.identifier ~ '__' ~ suffix})) }}
{%- endmacro %}


{#- Pre-hooks of a per-person event mart (`key`: 'day' for one row per person and day,
    'delta' or 'delta_by_category' for a delta model, 'rollup' for a model aggregated from
    the delta model `detail`): in an incremental run, write the touched set, then (delta)
    keep the rows the new events are added to, then delete every row of the touched set
    (the model then appends their new rows; a person or day that no longer has events
    keeps none). -#}
{% macro write_touched(key, detail=none) -%}
  {%- if is_incremental() -%}
    {%- set lower_bound = incremental_lower_bound('last_delivered_on') -%}
    create or replace table {{ touched_relation() }} as
    {% if key == 'day' -%}
        {{ touched_event_days(lower_bound) }}
    {%- elif key == 'rollup' -%}
        {{ rollup_event_persons(lower_bound, detail) }}
    {%- else -%}
        {{ delta_event_persons(lower_bound, key == 'delta_by_category') }}
    {%- endif %}
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}

{% macro write_previous() -%}
  {%- if is_incremental() -%}
    create or replace table {{ touched_relation('previous') }} as
    select * from {{ this }}
    where unified_id in (
        select unified_id from {{ touched_relation() }} where not from_history)
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

{% macro drop_touched(suffix='touched') -%}
  {%- if is_incremental() -%}
    drop table if exists {{ touched_relation(suffix) }}
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}


{#- Pre-hook of the event tables delivered night by night (stg_pixel__events,
    int_events__resolved): in an incremental run, drop the rows of the deliveries about to be
    reloaded (a rerun of `ds` replaces them, also the events that left the delivery) and,
    with `expired`, of deliveries no longer in stg_pixel__events (expired by retention). -#}
{% macro event_mart_pre_hook(expired=true) -%}
  {%- if is_incremental() -%}
    delete from {{ this }}
    where (delivered_on > date '{{ incremental_lower_bound() }}'
           and delivered_on <= date '{{ var("ds") }}')
    {%- if expired %}
       or delivered_on < coalesce(
           (select min(delivered_on) from {{ ref('stg_pixel__events') }}), date '9999-12-31')
    {%- endif %}
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}


{#- int_identity__cookie_keys is rebuilt whole when it is not incremental, or on a rerun of
    a date before its newest delivery: the rows of the deliveries after that date's bound
    folded older rows, which are gone. -#}
{% macro cookie_keys_rebuilt() -%}
  {%- if not execute or not is_incremental() -%}{{ return(true) }}{%- endif -%}
  {{ return(run_query("select count(*) from " ~ this ~ " where delivered_on > date '"
                      ~ var('ds') ~ "'").columns[0].values()[0] > 0) }}
{%- endmacro %}


{#- Pre-hook of int_identity__cookie_keys: every row before a rebuild, else as the event
    tables (the reloaded deliveries' rows, not folded yet, and the expired ones). -#}
{% macro cookie_keys_pre_hook() -%}
  {%- if is_incremental() and cookie_keys_rebuilt() -%}
    delete from {{ this }}
  {%- else -%}
    {{ event_mart_pre_hook() }}
  {%- endif -%}
{%- endmacro %}


{#- Post-hook of int_identity__cookie_keys: up to the newest delivery before `ds`, keep only
    the latest row of each combination (null keys compare equal). After a night, the rows not
    folded yet are that night's deliveries: a rerun drops just those, and the older row of a
    combination it no longer has is still there. So a newer row of a combination can only be
    one of the deliveries since the last night that ran (`unfolded`: the newest delivery
    before `ds` of the rows earlier runs wrote), and only those are probed (1.8M rows at 1M
    people: 0.95 -> 0.62 s). A table rebuilt tonight has no earlier rows: all are probed. -#}
{% macro cookie_keys_fold() -%}
  {%- if is_incremental() -%}
    {%- set unfolded = newest_stamp(this, "delivered_on < date '" ~ var('ds') ~ "' and changed_at < "
                                    ~ run_start(), column='delivered_on') or '1900-01-01' -%}
    delete from {{ this }} as older
    where older.delivered_on < (
        select max(delivered_on) from {{ this }} where delivered_on < date '{{ var("ds") }}')
      and exists (
        select 1 from {{ this }} as newer
        where newer.delivered_on > older.delivered_on
          and newer.delivered_on >= date '{{ unfolded }}'
          and newer.delivered_on < date '{{ var("ds") }}'
          and newer.anonymous_id = older.anonymous_id
          and newer.customer_id is not distinct from older.customer_id
          and newer.email_sha256 is not distinct from older.email_sha256
          and newer.checkout_order_id is not distinct from older.checkout_order_id)
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}


{#- The config of a per-person event model (`key`: 'day' for customer_engagement_daily,
    'rollup' with its `detail` model for int_customers__event_activity, 'delta' for
    int_customers__device_activity, 'delta_by_category' for int_customers__category_views):
    incremental append after the pre-hooks deleted the touched rows; a delta model first
    keeps in `<mart>__previous` the rows of the persons who only gained new events. Also
    records the models the touched set reads, which dbt cannot see at parse time (it runs
    only in incremental runs). -#}
{% macro per_person_event_config(key, detail=none) -%}
  {%- set is_delta = key.startswith('delta') -%}
  {%- set pre_hook = ["{{ write_touched('" ~ key ~ "', " ~ (("'" ~ detail ~ "'") if detail else 'none') ~ ") }}"] -%}
  {%- set post_hook = ["{{ drop_touched() }}"] -%}
  {%- if is_delta -%}
    {%- do pre_hook.append("{{ write_previous() }}") -%}
    {%- do post_hook.append("{{ drop_touched('previous') }}") -%}
  {%- endif -%}
  {%- do pre_hook.append("{{ delete_touched('" ~ key ~ "') }}") -%}
  {{ config(
      materialized=keyed_incremental(),
      incremental_strategy='append',
      on_schema_change='fail',
      pre_hook=pre_hook,
      post_hook=post_hook
  ) }}
  {%- do ref('int_events__key_persons') -%}
  {%- do ref('int_events__expired_persons') -%}
  {%- if is_delta %}{% do ref('int_events__sku_categories') %}{% endif -%}
  {%- if detail %}{% do ref(detail) %}{% endif -%}
{%- endmacro %}


{#- The events customer_engagement_daily aggregates: those with a person, and in an
    incremental run only those of the touched days the pre-hook wrote, so each row is
    recomputed whole. Its `last_delivered_on` column is how the next run finds its lower
    bound. -#}
{% macro touched_person_events() -%}
    {%- if is_incremental() %}
    select events.* from {{ ref('int_events__resolved') }} as events
    semi join {{ touched_relation() }} as touched
        on events.unified_id = touched.unified_id
        and cast(events.occurred_at as date) = touched.activity_on
    {%- else %}
    select * from {{ ref('int_events__resolved') }}
    where unified_id is not null
    {%- endif %}
{%- endmacro %}


{#- The events a delta model aggregates: those with a person, and in an incremental run all
    events of the touched persons recomputed from history, plus the events of deliveries
    after the lower bound of the others (a filter on `delivered_on`, so DuckDB skips the
    row groups of older deliveries). The model adds the latter to `delta_previous_rows()`. -#}
{% macro delta_person_events() -%}
    select * from {{ ref('int_events__resolved') }}
    where unified_id is not null
    {%- if is_incremental() %}
      and unified_id in (
          select unified_id from {{ touched_relation() }} where from_history)
    union all
    select * from {{ ref('int_events__resolved') }}
    where delivered_on > date '{{ incremental_lower_bound('last_delivered_on') }}'
      and delivered_on <= date '{{ var("ds") }}'
      and unified_id in (
          select unified_id from {{ touched_relation() }} where not from_history)
    {%- endif %}
{%- endmacro %}


{#- The rows a delta model's new events are added to (empty when not incremental), as
    `columns`. -#}
{% macro delta_previous_rows(columns) -%}
    {%- if is_incremental() %}
    union all
    select {{ columns | join(', ') }} from {{ touched_relation('previous') }}
    {%- endif %}
{%- endmacro %}


{#- A per-run watermark, for an incremental model whose rows cannot tell which deliveries it
    has processed: campaign_responses' rows change only on nights with campaign activity or
    purchases of their persons, so the newest delivery among them lags behind (a bound read
    off them once reached back past the night int_events__key_persons was first built, and
    every person counted as moved). `<model>__runs` holds one row, the `ds` of the last
    successful build (every delivery up to it is counted), written by the post-hook. -#}
{% macro run_watermark_relation() -%}
  {{ return(touched_relation('runs')) }}
{%- endmacro %}

{#- The bound of an incremental run (a date literal string): the `ds` of the last build, or
    none to recompute every row: outside an incremental run, without a watermark (the first
    build after upgrading), and on a rerun of that `ds` or an earlier one (events may have
    left the delivery that build counted, and no row says which). -#}
{% macro run_watermark_bound() -%}
  {%- if not execute or not is_incremental() -%}{{ return(none) }}{%- endif -%}
  {%- set relation = adapter.get_relation(database=this.database, schema=this.schema,
                                          identifier=run_watermark_relation().identifier) -%}
  {%- if relation is none -%}{{ return(none) }}{%- endif -%}
  {%- set last = run_query("select max(ds) from " ~ relation).columns[0].values()[0] -%}
  {%- if last is none or (last | string) >= (var('ds') | string) -%}{{ return(none) }}{%- endif -%}
  {{ return(last | string) }}
{%- endmacro %}

{#- Post-hook: record this build's `ds` (DuckDB; on Spark the model is rebuilt whole). -#}
{% macro write_run_watermark() -%}
  {%- if personalization.keyed_incremental() == 'incremental' -%}
    create or replace table {{ run_watermark_relation() }} as
    select date '{{ var("ds") }}' as ds
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}


{#- campaign_responses: the rows (unified_id, days from_day..to_day) new events can change
    since `lower_bound`: the day of a new open or click; the click days a new purchase can
    convert (a click at most 7 days before it: that day and the 7 before); every day of the
    moved persons (their old events changed person or expired). -#}
{% macro campaign_touched_days(lower_bound) -%}
    select unified_id, date '1900-01-01' as from_day, date '9999-12-31' as to_day
    from ({{ moved_event_persons(lower_bound) }}) as moved
    union
    select
        unified_id,
        case when event_type = 'purchase' then cast(occurred_at as date) - 7
             else cast(occurred_at as date) end as from_day,
        cast(occurred_at as date) as to_day
    from {{ ref('int_events__resolved') }}
    where delivered_on > date '{{ lower_bound }}' and delivered_on <= date '{{ var("ds") }}'
      and unified_id is not null
      and {{ campaign_response_event() }}
{%- endmacro %}

{#- The events campaign_responses counts: campaign opens and clicks, and the purchases that
    convert them. -#}
{% macro campaign_response_event() -%}
    (event_type = 'purchase'
     or (event_type in ('email_open', 'email_click')
         and campaign_id is not null and variant is not null))
{%- endmacro %}

{#- `alias`'s (unified_id, `day`) is in the touched set. -#}
{% macro in_campaign_touched_days(alias, day='activity_on') -%}
    exists (
        select 1 from {{ touched_relation() }} as touched
        where touched.unified_id = {{ alias }}.unified_id
          and {{ alias }}.{{ day }} between touched.from_day and touched.to_day)
{%- endmacro %}

{#- Pre-hooks of a model with a per-run watermark (`kind`: 'campaign' for campaign_responses,
    'orders' / 'items' for the order models, macros/incremental_orders.sql): write the rows
    the night can change since the watermark to `<model>__touched`, delete them (every row
    when the run has no bound). -#}
{% macro write_watermark_touched(kind) -%}
  {%- set lower_bound = run_watermark_bound() -%}
  {%- if lower_bound is not none -%}
    create or replace table {{ touched_relation() }} as
    {% if kind == 'campaign' -%}
    {{ campaign_touched_days(lower_bound) }}
    {%- else -%}
    {{ touched_orders(kind, lower_bound) }}
    {%- endif %}
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}

{% macro delete_watermark_touched(kind) -%}
  {%- if is_incremental() -%}
    delete from {{ this }}
    {%- if run_watermark_bound() is not none %}
    where {{ in_campaign_touched_days(this.identifier) if kind == 'campaign' else in_touched_orders() }}
    {%- endif %}
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}

{#- Config of a model with a per-run watermark: incremental append after the pre-hooks; the
    post-hooks drop the touched set and record the run. -#}
{% macro watermark_incremental_config(kind) -%}
  {{ config(
      materialized=keyed_incremental(),
      incremental_strategy='append',
      on_schema_change='fail',
      pre_hook=["{{ write_watermark_touched('" ~ kind ~ "') }}",
                "{{ delete_watermark_touched('" ~ kind ~ "') }}"],
      post_hook=["{{ drop_touched() }}", "{{ write_run_watermark() }}"]
  ) }}
{%- endmacro %}

{#- Config of campaign_responses; records the models the touched set reads, which dbt cannot
    see at parse time. -#}
{% macro campaign_responses_config() -%}
  {{ watermark_incremental_config('campaign') }}
  {#- Not under a unit test, which gives only the model's own inputs (it never runs
      incrementally). -#}
  {%- if model.resource_type != 'unit_test' -%}
    {%- do ref('int_events__key_persons') -%}
    {%- do ref('int_events__expired_persons') -%}
  {%- endif -%}
{%- endmacro %}

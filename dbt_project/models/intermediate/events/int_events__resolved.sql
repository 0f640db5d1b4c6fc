-- One row per loaded pixel event (event_id): its person, the logged-in shop account's if
-- there is one, else the cookie's (int_events__key_persons), and its product's category
-- (int_events__sku_categories). The customer_events mart publishes it; the per-person event
-- aggregates (macros/incremental_events.sql) read it.
-- Incremental (exception to the intermediate-as-tables rule): the largest table. A night
-- writes the events of the deliveries after the last one loaded (normally just `ds`), and
-- re-writes the events whose person or category changed since then: those of key pairs
-- identity moved to another person, and of re-categorised skus. `--full-refresh` maps every
-- event afresh and gives the same table (tests/test_incremental_marts.py). The pre-hook
-- drops rows of deliveries about to be reloaded (a rerun of `ds`) and of deliveries
-- retention removed from stg_pixel__events. The delete of delete+insert probes every row only
-- with the re-written old events' ids, and only the row groups of their times (an event's
-- occurred_at never changes; recent_delete_insert, macros/lake.sql).
{{ config(
    materialized=keyed_incremental(),
    incremental_strategy='recent_delete_insert',
    unique_key='event_id',
    key_fixed_column='occurred_at',
    on_schema_change='fail',
    pre_hook="{{ event_mart_pre_hook() }}"
) }}

-- Runs after int_events__expired_persons, which reads the rows the pre-hook deletes:
-- depends_on: {{ ref('int_events__expired_persons') }}

{%- set lower_bound = incremental_lower_bound() if is_incremental() else none %}
{#- What the model reads of an event: the scans behind the `union` read every column they
    name, for all 96M events at 1M people (url and the rest: 6.7 -> 5.9 CPU s). -#}
{%- set columns = 'event_id, occurred_at, customer_id, anonymous_id, event_type, sku, '
                  ~ 'campaign_id, variant, device, delivered_on' %}

with events as (
    select * from {{ ref('stg_pixel__events') }}
),

key_persons as (
    select * from {{ ref('int_events__key_persons') }}
),

sku_categories as (
    select * from {{ ref('int_events__sku_categories') }}
),

{% if is_incremental() -%}
remapped as (
    select customer_id, anonymous_id from key_persons
    where remapped_on > date '{{ lower_bound }}'
),

-- The new deliveries (DuckDB skips older row groups), and the old events to re-write, each
-- found by one semi-join on one column, not by an OR over every event (which read every
-- column of every event): those of re-mapped pairs by their cookie (or account, for pairs
-- without one; their events have none), and of re-categorised skus. The cookie also selects
-- other pairs of the same cookie; re-writing those gives the rows they already have. `union`
-- keeps an event found twice once. Each branch names the table, not the `events` CTE: a CTE
-- used more than once is materialized by DuckDB, a copy of every event.
old_selected as (
    select {{ columns }} from {{ ref('stg_pixel__events') }}
    where delivered_on <= date '{{ lower_bound }}'
      and anonymous_id in (select remapped.anonymous_id from remapped)
    union
    select {{ columns }} from {{ ref('stg_pixel__events') }}
    where delivered_on <= date '{{ lower_bound }}' and anonymous_id is null
      and customer_id in (
          select remapped.customer_id from remapped where remapped.anonymous_id is null)
    union
    select {{ columns }} from {{ ref('stg_pixel__events') }}
    where delivered_on <= date '{{ lower_bound }}'
      and sku in (select sku from sku_categories where changed_on > date '{{ lower_bound }}')
),

{% endif -%}
selected as (
    select *, {{ event_person_key('customer_id', 'anonymous_id') }} as person_key
    from (
        select {{ columns }} from events
        where delivered_on <= date '{{ var("ds") }}'
        {%- if is_incremental() %}
          and delivered_on > date '{{ lower_bound }}'
        union all
        select * from old_selected
        {%- endif %}
    ) as events
),

-- Materialized before the sort (a night's rows): sorted straight from the joins, a night
-- that re-maps many persons' events ran out of memory (22M rows at 1M people after a mass
-- merge, DuckDB's 4GB limit); the same rows sort within it once collected.
final as {% if is_incremental() %}materialized {% endif %}(
    select
        selected.event_id,
        key_persons.unified_id,
        selected.occurred_at,
        selected.event_type,
        selected.sku,
        sku_categories.category,
        selected.campaign_id,
        selected.variant,
        selected.device,
        selected.delivered_on
    from selected
    left join key_persons
        on selected.person_key = key_persons.person_key
    left join sku_categories
        on selected.sku = sku_categories.sku
)

select * from final
{%- if is_incremental() %}
-- A night appends its rows in time order: DuckDB skips row groups by their min/max
-- occurred_at, and the re-mapped old events (from any day of the history) mixed into the
-- night's row groups would widen each to months; the segments' time windows then read every
-- row group. The full build keeps the lake's order (each delivery in line order).
order by occurred_at
{%- endif %}

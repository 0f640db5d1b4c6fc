-- One row per person some of whose loaded events left since the last build: retention
-- expired their delivery (it is gone from stg_pixel__events; docs/privacy.md), or the erase
-- step removed them for another person's erasure (an erased address's hash on this person's
-- cookie: pipeline_state.erased_event_persons, listed on the night of the erasure, which ran
-- after the last delivery loaded before `ds`). int_events__resolved drops expired events
-- (erased ones are gone already); the per-person event marts recompute these persons.
-- Reads the int_events__resolved table as the last build left it, by name and not by ref():
-- this model must run before int_events__resolved replaces those rows, and a ref would order
-- it after. Empty on the first build.
{#- none before the first build, or a table from before the incremental marts #}
{%- set built = previous_build_relation('int_events__resolved', 'delivered_on', any_engine=true) %}
{%- set erased = adapter.get_relation(database=this.database, schema='pipeline_state',
                                      identifier='erased_event_persons')
                 if execute and target.type == 'duckdb' else none %}

with stg_events as (
    select * from {{ ref('stg_pixel__events') }}
),

{% if built is not none %}
expired as (
    select unified_id
    from {{ built }}
    where unified_id is not null
      and delivered_on < coalesce(
          (select min(delivered_on) from stg_events), date '9999-12-31')
),

erased as (
    {%- if erased is not none %}
    select unified_id from {{ erased }}
    where removed_on >= (
        select max(delivered_on) from {{ built }}
        where delivered_on < date '{{ var("ds") }}')
    {%- else %}
    select cast(null as string) as unified_id where false
    {%- endif %}
),

final as (
    select unified_id from expired
    union
    select unified_id from erased
)
{% else %}
final as (
    select cast(null as string) as unified_id where false
)
{% endif %}

select * from final

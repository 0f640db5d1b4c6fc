-- One row per person some of whose loaded events retention has expired since the last build
-- (their delivery is gone from stg_pixel__events; docs/privacy.md). int_events__resolved
-- drops those events; the per-person event marts recompute these persons.
-- Reads the int_events__resolved table as the last build left it, by name and not by ref():
-- this model must run before int_events__resolved replaces those rows, and a ref would order
-- it after. Empty on the first build.
{#- none before the first build, or a table from before the incremental marts #}
{%- set built = previous_build_relation('int_events__resolved', 'delivered_on', any_engine=true) %}

with stg_events as (
    select * from {{ ref('stg_pixel__events') }}
),

{% if built is not none %}
final as (
    select distinct unified_id
    from {{ built }}
    where unified_id is not null
      and delivered_on < coalesce(
          (select min(delivered_on) from stg_events), date '9999-12-31')
)
{% else %}
final as (
    select cast(null as string) as unified_id where false
)
{% endif %}

select * from final

{#-
  Data tests on the largest incremental tables (stg_pixel__events, customer_events, the staged
  orders and their lines) check the rows of the recent deliveries, not the whole table every
  night (docs/performance.md,
  "Data tests scoped to the recent deliveries"). Those tables only ever gain rows of new
  deliveries (delivered_on) or lose rows (retention, erasure): a row's columns are checked
  on the nights after it lands, and a later night cannot break them. A re-mapped event keeps
  its delivered_on: the test of unified_id, which a night may rewrite on old events, also
  checks the persons identity moved (relationships_in_recent_deliveries, below; "Data tests on
  the night's rows"). The append-only identity caches use the same window through
  unique_combination's `written_column` (macros/generic_tests.sql).

  The window is what the nights since the last passing one wrote: the rows delivered (or
  written) after `data_tests_passed_through`, the newest night up to `ds` whose marts tests all
  passed, which `build_marts` reads from the warehouse (personalization/warehouse/
  tested_nights.py), or after the night before `ds` if that is earlier (a rerun rewrites its
  own night). Without it (dbt run by hand, no night recorded) the last `data_test_recent_days`
  deliveries up to `ds` (3: tonight's, a rerun, a catch-up after up to two missed nights).
  `--full-refresh`, data_test_recent_days = 0 (the first build and the weekly night:
  data_tests_whole_weekday), and engines on which these tables are rebuilt whole (Spark)
  check the whole table.
-#}

{#- The first delivery date outside the window (rows delivered after it are "recent"), or
    none when the whole table is checked. -#}
{% macro recent_deliveries_after() -%}
  {%- set days = var('data_test_recent_days') | int -%}
  {%- if flags.FULL_REFRESH or days <= 0 or personalization.keyed_incremental() != 'incremental' -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set ds = modules.datetime.date.fromisoformat(var('ds') | string) -%}
  {%- set passed = var('data_tests_passed_through') -%}
  {%- if passed -%}
    {{ return([modules.datetime.date.fromisoformat(passed | string),
               ds - modules.datetime.timedelta(days=1)] | min | string) }}
  {%- endif -%}
  {{ return((ds - modules.datetime.timedelta(days=days)).isoformat()) }}
{%- endmacro %}


{#- The filter of the window on `column`: `true` when the whole table is checked. -#}
{% macro recent_deliveries_filter(column='delivered_on') -%}
  {%- set after = personalization.recent_deliveries_after() -%}
  {%- if after is none -%}
    true
  {%- else -%}
    {{ column }} > date '{{ after }}'
  {%- endif -%}
{%- endmacro %}


{#- dbt's own macro, overridden (dbt's documented way to template a test's `where`, whose
    config cannot call macros): `where: "__recent_deliveries__"` becomes the window filter
    above. Any other `where` behaves as in dbt. -#}
{% macro get_where_subquery(relation) -%}
  {%- set where = config.get('where', '') -%}
  {%- if where -%}
    {%- set where = where | replace('__recent_deliveries__', personalization.recent_deliveries_filter()) -%}
    {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
  {%- endif -%}
  {%- do return(relation) -%}
{%- endmacro %}


{#- Rows whose `column_name` occurs more than once in the whole table, among the keys of the
    recent deliveries' rows: a new row is checked against every row, old or new, so a
    duplicate cannot hide in the part of the table a night does not scan. Keys that were
    unique when their rows were checked stay unique: the table's other rows are only deleted.
    With `key` (a hash of the column, macros/event_keys.sql) the recent rows' keys are looked
    up among every row's, and only the rows of a key found twice are checked by their values,
    in the deliveries holding them (none, normally: the values are then not read). The whole
    table (as dbt's `unique`) when the window is off. -#}
{% test unique_in_recent_deliveries(model, column_name, delivered_column='delivered_on', key=none) %}
{%- set after = personalization.recent_deliveries_after() %}
{%- if after is not none and key %}
with repeated_keys as (
    select {{ delivered_column }}, {{ key }} from {{ model }}
    where {{ key }} in (
        select {{ key }} from {{ model }} where {{ delivered_column }} > date '{{ after }}')
    qualify count(*) over (partition by {{ key }}) > 1
)

select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
  and {{ delivered_column }} in (select repeated_keys.{{ delivered_column }} from repeated_keys)
  and {{ key }} in (select repeated_keys.{{ key }} from repeated_keys)
group by {{ column_name }}
having count(*) > 1
{%- else %}
select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
{%- if after is not none %}
  and {{ column_name }} in (
      select {{ column_name }} from {{ model }}
      where {{ delivered_column }} > date '{{ after }}')
{%- endif %}
group by {{ column_name }}
having count(*) > 1
{%- endif %}
{% endtest %}


{#- Persons (`column_name`) of the event rows not found in `to`.`field` (dbt's
    `relationships`), on the rows a night could have broken. An event's person is its key
    pair's (`key_pairs`, int_events__key_persons, whose `unified_id` every night re-checks
    against identity): an old event keeps a person tonight's profiles do not have only if
    that person left the profiles tonight, and a person leaves only by identity (merged away:
    `merges`, or its records gone, e.g. a cookie whose events all expired), which moves its
    key pairs to another person or to none (`remapped_on`, `previous_unified_id`). So a night
    checks:
      - the rows of the recent deliveries;
      - every row whose person a key pair left in the window (`previous_unified_id`, the
        last move only) or identity merged away in the window: all their events must have
        moved;
      - every key pair's person (a few rows per person): the person a re-written event gets,
        and profiles that lost a person identity still has, whatever events they have.
    The whole model (as dbt's `relationships`) when the window is off. -#}
{% test relationships_in_recent_deliveries(model, column_name, to, field, key_pairs, merges,
                                           delivered_column='delivered_on') %}
{%- set after = personalization.recent_deliveries_after() %}
with parents as (
    select {{ field }} as person from {{ to }}
),

{%- if after is none %}

checked as (
    select {{ column_name }} as person from {{ model }}
    where {{ column_name }} is not null
),
{%- else %}

moved as (
    select previous_unified_id as person from {{ key_pairs }}
    where remapped_on > date '{{ after }}' and previous_unified_id is not null
    union
    select absorbed_unified_id from {{ merges }} where merged_on > date '{{ after }}'
),

{#- One branch per kind of row, so that each is a scan DuckDB prunes (the window) or a probe
    into a small set (the moved persons), not a test of every row against both. A row in
    both is checked twice (a failure counted twice). #}
checked as (
    select {{ column_name }} as person from {{ model }}
    where {{ delivered_column }} > date '{{ after }}' and {{ column_name }} is not null
    union all
    select {{ column_name }} from {{ model }}
    where {{ column_name }} in (select moved.person from moved)
    union all
    select unified_id from {{ key_pairs }} where unified_id is not null
),
{%- endif %}

final as (
    select checked.person
    from checked
    left join parents on checked.person = parents.person
    where parents.person is null
)

select * from final
{% endtest %}

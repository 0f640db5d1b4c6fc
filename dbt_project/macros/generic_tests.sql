{#- Rows whose combination of `columns` is not unique (dbt_utils' test, without the package).

    `written_column` (optional) names the column in which an incremental table records the
    run that wrote each row (a cache's `computed_on`; the delivery of a staged order's lines,
    rewritten per order with their delivery, `delivered_on`). A night then checks only
    the combinations of the rows written in the recent-deliveries window
    (macros/recent_deliveries.sql), each counted in the whole table (among the rows whose
    first column is a recent row's, which hold all of its combination): such a table's old rows
    are never rewritten and were unique when the nights that wrote them checked them, so a
    new duplicate includes a recent row. The whole table on a first build, `--full-refresh`
    and with data_test_recent_days = 0. -#}
{% test unique_combination(model, columns, written_column=none) %}
{%- set after = personalization.recent_deliveries_after() if written_column else none %}
select {{ columns | join(', ') }}, count(*) as n_rows
from {{ model }} as checked
{%- if after is not none %}
{#- Rows sharing the first column with a recent row hold every row of each recent row's
    combination: one cheap single-column semi-join, then the count on those rows only. #}
where exists (
    select 1 from {{ model }} as recent
    where recent.{{ written_column }} > date '{{ after }}'
      and recent.{{ columns[0] }} is not distinct from checked.{{ columns[0] }}
)
{%- endif %}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

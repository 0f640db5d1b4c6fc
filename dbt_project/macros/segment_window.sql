{#-
    Time windows for segments. Every "last N days" ends at the end of the logical date
    var('ds') (exclusive), never at the wall clock, so backfills and reruns of an old date
    see exactly what the nightly run saw. Uses dbt's cross-database dateadd so the same
    segment SQL runs on Spark or Trino.
-#}

{% macro segment_as_of_date() -%}
    cast('{{ var("ds") }}' as date)
{%- endmacro %}

{#- Exclusive end of the window: midnight after ds (UTC). -#}
{% macro segment_window_end() -%}
    {{ dbt.dateadd('day', 1, "cast('" ~ var('ds') ~ "' as timestamp)") }}
{%- endmacro %}

{#- Inclusive start of a window of `n` `unit`s (day, hour, month) ending at the end of ds. -#}
{% macro segment_window_start(n, unit='day') -%}
    {{ dbt.dateadd(unit, -1 * (n | int), segment_window_end()) }}
{%- endmacro %}

{#- `column` lies in the last `n` `unit`s up to the end of ds. -#}
{% macro segment_in_window(column, n, unit='day') -%}
    ({{ column }} >= {{ segment_window_start(n, unit) }} and {{ column }} < {{ segment_window_end() }})
{%- endmacro %}

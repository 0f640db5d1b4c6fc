{#-
  A table the night recomputes whole but writes as its changes (DuckDB; on Spark a table
  rebuilt whole, keyed_incremental()). Writing a wide table into the warehouse costs more than
  computing it (the 232k identity records at 100k customers: ~0.8 CPU s to write, ~0.2 s to
  compute), while a night changes a few thousand of its rows. So the model computes every row
  exactly as a full rebuild does, and only the rows that differ from the table's (new or
  changed, every column compared) are written, by delete+insert on the key; a key the night no
  longer has gets a placeholder row (the key, every other column null) that the post-hook
  deletes. The table's rows are therefore always the full rebuild's (docs/identity.md,
  "Writing only the changed rows").

  changed_rows_config(unique_key, marker): the model's config; `marker` is a column never null
  in a real row and not a key column (the post-hook deletes the placeholders by it); the key
  must be unique (rows are compared as a set). on_schema_change='fail': the
  rows are compared on the table's columns, so a model whose columns change needs a
  --full-refresh (dbt says so).
  changed_rows(relation, unique_key): the model's last select, over its `final` CTE.
-#}
{% macro changed_rows_config(unique_key, marker) -%}
  {%- if marker in ([unique_key] if unique_key is string else unique_key) -%}
    {{ exceptions.raise_compiler_error("changed_rows_config: the marker must not be a key column (a placeholder holds the key)") }}
  {%- endif -%}
  {{ config(
      materialized=keyed_incremental(),
      incremental_strategy='delete+insert',
      unique_key=unique_key,
      on_schema_change='fail',
      post_hook="{% if is_incremental() %}delete from {{ this }} where " ~ marker ~ " is null{% endif %}"
  ) }}
{%- endmacro %}

{% macro changed_rows(relation, unique_key) %}
    {%- set keys = [unique_key] if unique_key is string else unique_key %}
    {%- if is_incremental() %}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list %}
    select * from (
        with rebuilt as materialized (
            select * from {{ relation }}
        ),

        -- New or changed rows: not in the table as they are.
        changed as (
            select {{ columns | join(', ') }} from rebuilt
            except
            select {{ columns | join(', ') }} from {{ this }}
        )

        select rebuilt.* from rebuilt
        where exists (
            select 1 from changed
            where {% for key in keys %}changed.{{ key }} = rebuilt.{{ key }}{% if not loop.last %} and {% endif %}{% endfor %}
        )
        union all by name
        -- Keys the night no longer has: a placeholder each, deleted by the post-hook.
        select {% for key in keys %}previous.{{ key }}{% if not loop.last %}, {% endif %}{% endfor %}
        from {{ this }} as previous
        where not exists (
            select 1 from rebuilt
            where {% for key in keys %}rebuilt.{{ key }} = previous.{{ key }}{% if not loop.last %} and {% endif %}{% endfor %}
        )
    ) as changed_rows
    {%- else %}
    select * from {{ relation }}
    {%- endif %}
{% endmacro %}

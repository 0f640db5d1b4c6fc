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
  changed_rows(relation, unique_key, scope, stamped): the model's last select, over its `final`
  CTE.

  Stamped tables (stamped=true; docs/identity.md, "Identity that follows tonight's records"):
  the model's rows carry `changed_at`, the start of the dbt run that last wrote the row (never
  compared), so a reader can take only the rows written after it last ran (changed_since()).
  A run's start, not `ds`: later runs always stamp later, also a rerun of a date or a run for
  an older date, and rows the same run wrote before its reader ran were read by it. Such a
  model may also compute only some keys: changed_rows(relation, unique_key, scope) then
  compares with the table's rows of the keys in `scope` (a CTE of key columns: every key whose
  row may differ, deleted ones included) and leaves every other row as it is. The stamp column
  is added to an existing table in place (append_new_columns): the night that adds it computes
  whole and writes every row once with its stamp (changed_rows(..., stamped=true)).
-#}

{#- The newest stamp of this stamped table (a timestamp literal's text), or none when the model
    must be computed whole: not incremental, or no stamp yet. Its rows were computed by that
    run from every upstream row stamped up to it, so a reader recomputes the keys of upstream
    rows stamped after it (and of rows gone). When it wrote nothing in a run, its newest stamp
    is older and it reads some rows again: a superset, never fewer. -#}
{% macro changed_since() %}
    {%- if not execute or not is_incremental() %}{{ return(none) }}{% endif %}
    {{ return(newest_stamp(this)) }}
{% endmacro %}

{#- The newest stamp (`column`, changed_at by default) of a relation's rows (matching
    `where`), or none when it has no such column (built before the stamps) or no stamped row. -#}
{% macro newest_stamp(relation, where='true', column='changed_at') %}
    {%- if not execute or relation is none
           or column not in (adapter.get_columns_in_relation(relation) | map(attribute='name') | list) %}
        {{ return(none) }}
    {%- endif %}
    {{ return(run_query('select max(' ~ column ~ ')::varchar from ' ~ relation ~ ' where ' ~ where).columns[0].values()[0]) }}
{% endmacro %}

{#- The keys of this table that `current` (a CTE or relation keyed by record_key) no longer
    has: a scoped model's records gone, which its scope must hold (a placeholder each). -#}
{% macro changed_rows_gone(current) -%}
    select previous.record_key from {{ this }} as previous
    where not exists (select 1 from {{ current }} where {{ current }}.record_key = previous.record_key)
{%- endmacro %}

{#- This dbt run's start, a timestamp literal: what stamps rows with the run that wrote them. -#}
{% macro run_start() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}

{#- The stamp column of a stamped model's final select: this run's start. -#}
{% macro changed_at_column() -%}
    {{ run_start() }} as changed_at
{%- endmacro %}

{#- append_columns: a column added to the model is added to the table in place (its first night
    then writes every row once), instead of failing until a --full-refresh.
    `marker` may be a list: a row with any of them null is deleted (a placeholder, or a row of
    a table built before one of them was added). -#}
{% macro changed_rows_config(unique_key, marker, stamped=false, append_columns=false) -%}
  {%- set markers = [marker] if marker is string else marker -%}
  {%- if markers | select('in', [unique_key] if unique_key is string else unique_key) | list -%}
    {{ exceptions.raise_compiler_error("changed_rows_config: the marker must not be a key column (a placeholder holds the key)") }}
  {%- endif -%}
  {{ config(
      materialized=keyed_incremental(),
      incremental_strategy='delete+insert',
      unique_key=unique_key,
      on_schema_change=('append_new_columns' if stamped or append_columns else 'fail'),
      post_hook="{% if is_incremental() %}delete from {{ this }} where "
                ~ (markers | join(' is null or ')) ~ " is null{% endif %}"
  ) }}
{%- endmacro %}

{#- The model's last select: tonight's rows that differ from the table's.

    added_column: a column the model gained (append_columns): on the night it is added every
    row is written, as for the stamps, else unchanged rows would keep it null.

    How they are compared: tonight's rows and the table's meet in one full join on the key:
    a row without a stored match is new, a stored row without a match tonight is a key gone
    (its placeholder: the key, every other column null), and a matched pair is written when
    any column differs.
    The first night after a full build rewrites every id assignment (its transition columns
    change for everyone): with an `except` of every column, a materialized copy of tonight's
    rows and two probes, that compare of 6.8M rows ran out of DuckDB's 4 GB at 3M people
    (7.6 GiB, 17.4 s with 8 GB); the join fits in 4 GB and takes 9.8 s. -#}
{% macro changed_rows(relation, unique_key, scope=none, stamped=false, added_column=none) %}
    {%- set keys = [unique_key] if unique_key is string else unique_key %}
    {%- if is_incremental() %}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list %}
        {#- A table built before a column the model added (the stamps of a stamped table, or
            `added_column`): every row is written once with it (else a quiet night would leave
            no stamp and the next would compute whole again; unchanged rows would keep a null). #}
        {%- set added = (['changed_at'] if stamped else []) + ([added_column] if added_column else []) %}
        {%- set lacks_column = added | reject('in', columns) | list | length > 0 %}
        {#- The stamp is not compared: a row is rewritten when its data changed. #}
        {%- set compared = columns | reject('equalto', 'changed_at') | reject('in', keys) | list %}
    select * from (
        -- The table's rows that tonight's rows are compared with: every row, or those of
        -- the keys in scope (the model computed only those).
        with previous as (
            select * from {{ this }} as stored
            {%- if scope is not none %}
            where exists (
                select 1 from {{ scope }}
                where {% for key in keys %}{{ scope }}.{{ key }} = stored.{{ key }}{% if not loop.last %} and {% endif %}{% endfor %}
            )
            {%- endif %}
        )

        select rebuilt.* replace ({% for key in keys %}coalesce(rebuilt.{{ key }}, previous.{{ key }}) as {{ key }}{% if not loop.last %}, {% endif %}{% endfor %})
        from {{ relation }} as rebuilt
        full join previous
            on {% for key in keys %}rebuilt.{{ key }} = previous.{{ key }}{% if not loop.last %} and {% endif %}{% endfor %}
        where previous.{{ keys[0] }} is null
            or rebuilt.{{ keys[0] }} is null
            {%- if lacks_column %}
            or true
            {%- else %}
            {%- for column in compared %}
            or rebuilt.{{ column }} is distinct from previous.{{ column }}
            {%- endfor %}
            {%- endif %}
    ) as changed_rows
    {%- else %}
    select * from {{ relation }}
    {%- endif %}
{% endmacro %}

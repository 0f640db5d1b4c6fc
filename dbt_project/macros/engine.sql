{#-
  Engine differences that are not one function: how the lake and the scores are read, type
  names, star-except, connected components' engine, and the contract check's declared types.
  DuckDB is the reference; `spark__` versions run on dbt-spark (docs/scale_out.md lists
  what is safe to write in a segment file on both).
-#}

{#- The Parquet lake table `<lake>/raw/<source>/<table>/` as a relation (ds = hive partition). -#}
{% macro lake_path_relation(source_name, table_name) -%}
  {{ return(adapter.dispatch('lake_path_relation', 'personalization')(source_name, table_name)) }}
{%- endmacro %}

{% macro default__lake_path_relation(source_name, table_name) -%}
  {{ source(source_name, table_name) }}
{%- endmacro %}

{% macro spark__lake_path_relation(source_name, table_name) -%}
  {%- do source(source_name, table_name) -%}
  parquet.`{{ env_var('PERSONALIZATION_LAKE_DIR', '.personalization/lake') }}/raw/{{ source_name }}/{{ table_name }}`
{%- endmacro %}

{% macro spark__lake_has_files(source_name, table_name) -%}
  {#- Spark SQL cannot list a directory: the runner passes the tables that have files. -#}
  {{ return((source_name ~ '/' ~ table_name) in var('lake_tables', [])) }}
{%- endmacro %}


{#- The scores of var('ds') written by personalization.scoring as Parquet: that night's file
    itself (a missing file fails the model), named here at run time, not in the source's
    YAML, which dbt renders at parse time (ds there would make every night re-parse the
    project: personalization/warehouse/dbt.py, RUN_TIME_VARS). The source stays for lineage. -#}
{% macro scores_relation() -%}
  {%- do source('scores', 'customer_scores') -%}
  {{ return(adapter.dispatch('scores_relation', 'personalization')(scores_file())) }}
{%- endmacro %}

{% macro scores_file() -%}
  {{ return(env_var('PERSONALIZATION_SCORES_DIR', env_var('PERSONALIZATION_HOME', '.personalization') ~ '/scores')
            ~ '/ds=' ~ var('ds') ~ '/customer_scores.parquet') }}
{%- endmacro %}

{% macro default__scores_relation(path) -%}
  read_parquet('{{ path }}'{{ env_var('PERSONALIZATION_PARQUET_READ_OPTIONS', '') }})
{%- endmacro %}

{% macro spark__scores_relation(path) -%}
  parquet.`{{ path }}`
{%- endmacro %}


{#- A list of strings as a column type (DuckDB varchar[], Spark array<string>). -#}
{% macro type_string_list() -%}
  {{ return(adapter.dispatch('type_string_list', 'personalization')()) }}
{%- endmacro %}

{% macro default__type_string_list() %}varchar[]{% endmacro %}

{% macro spark__type_string_list() %}array<string>{% endmacro %}


{#- `select * <except> (cols)`: every column but these (DuckDB EXCLUDE, Spark EXCEPT). -#}
{% macro star_except(columns) -%}
  {{ return(adapter.dispatch('star_except', 'personalization')(columns)) }}
{%- endmacro %}

{% macro default__star_except(columns) -%}
  * exclude ({{ columns | join(', ') }})
{%- endmacro %}

{% macro spark__star_except(columns) -%}
  * except ({{ columns | join(', ') }})
{%- endmacro %}


{#- The values of an ordered list aggregate: list(x order by ...). -#}
{% macro ordered_list(expr, order_by) -%}
  {{ return(adapter.dispatch('ordered_list', 'personalization')(expr, order_by)) }}
{%- endmacro %}

{% macro default__ordered_list(expr, order_by) -%}
  list({{ expr }} order by {{ order_by }})
{%- endmacro %}

{% macro spark__ordered_list(expr, order_by) -%}
  {#- Spark's collect_list has no ORDER BY: collect (keys..., value) structs, sort them with a
      comparator that honours each key's direction, keep the values. Nulls are dropped, as
      the callers filter them out anyway. -#}
  {%- set keys = [] -%}
  {%- for part in order_by.split(',') -%}
    {%- set words = part.strip().split() -%}
    {%- do keys.append({'expr': words[0], 'desc': (words | length > 1 and words[1] | lower == 'desc')}) -%}
  {%- endfor -%}
  transform(
    array_sort(
      collect_list(struct({% for k in keys %}{{ k.expr }} as k{{ loop.index0 }}, {% endfor %}{{ expr }} as v)),
      (l, r) -> case
        {%- for k in keys %}
        when l.k{{ loop.index0 }} < r.k{{ loop.index0 }} then {{ '1' if k.desc else '-1' }}
        when l.k{{ loop.index0 }} > r.k{{ loop.index0 }} then {{ '-1' if k.desc else '1' }}
        {%- endfor %}
        else 0 end),
    e -> e.v)
{%- endmacro %}


{#-
  Declared contract types on Spark: the YAML states DuckDB's names (varchar, varchar[],
  integer); dbt's contract check casts null to each declared type, so translate them.
-#}
{% macro spark_type(data_type) -%}
  {%- set t = data_type | trim | lower -%}
  {%- set mapping = {'varchar': 'string', 'text': 'string', 'varchar[]': 'array<string>',
                     'integer': 'int', 'hugeint': 'decimal(38,0)', 'ubigint': 'decimal(20,0)',
                     'timestamp with time zone': 'timestamp', 'timestamptz': 'timestamp',
                     'double[]': 'array<double>', 'integer[]': 'array<int>'} -%}
  {{- mapping.get(t, t) -}}
{%- endmacro %}

{% macro spark__cast(field, type) -%}
  cast({{ field }} as {{ personalization.spark_type(type) }})
{%- endmacro %}


{#- Replace every match of a regular expression (DuckDB needs the 'g' flag; Spark replaces all). -#}
{% macro regexp_replace_all(expr, pattern, replacement) -%}
  {{ return(adapter.dispatch('regexp_replace_all', 'personalization')(expr, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(expr, pattern, replacement) -%}
  regexp_replace({{ expr }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}

{% macro spark__regexp_replace_all(expr, pattern, replacement) -%}
  regexp_replace({{ expr }}, '{{ pattern }}', '{{ replacement }}')
{%- endmacro %}


{#- True when the whole string matches the pattern (null for null). -#}
{% macro regexp_matches_fully(expr, pattern) -%}
  {{ return(adapter.dispatch('regexp_matches_fully', 'personalization')(expr, pattern)) }}
{%- endmacro %}

{% macro default__regexp_matches_fully(expr, pattern) -%}
  regexp_full_match({{ expr }}, '{{ pattern }}')
{%- endmacro %}

{% macro spark__regexp_matches_fully(expr, pattern) -%}
  ({{ expr }} rlike '^(?:{{ pattern }})$')
{%- endmacro %}


{#- Lower-case hex SHA-256 of a string. -#}
{% macro sha256_hex(expr) -%}
  {{ return(adapter.dispatch('sha256_hex', 'personalization')(expr)) }}
{%- endmacro %}

{% macro default__sha256_hex(expr) -%}
  sha256({{ expr }})
{%- endmacro %}

{% macro spark__sha256_hex(expr) -%}
  sha2({{ expr }}, 256)
{%- endmacro %}


{#- Accents removed ('é' -> 'e'). -#}
{% macro strip_accents(expr) -%}
  {{ return(adapter.dispatch('strip_accents', 'personalization')(expr)) }}
{%- endmacro %}

{% macro default__strip_accents(expr) -%}
  strip_accents({{ expr }})
{%- endmacro %}

{#- Spark has no strip_accents, and views may not call session functions: every Latin letter
    with a diacritic (U+00C0-U+024F, U+1E00-U+1EFF, those whose canonical decomposition
    starts with an ASCII letter) maps to its base letter, as DuckDB's strip_accents does. -#}
{% macro spark__strip_accents(expr) -%}
  translate({{ expr }}, 'ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛǜǞǟǠǡǦǧǨǩǪǫǬǭǰǴǵǸǹǺǻȀȁȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮȯȰȱȲȳḀḁḂḃḄḅḆḇḈḉḊḋḌḍḎḏḐḑḒḓḔḕḖḗḘḙḚḛḜḝḞḟḠḡḢḣḤḥḦḧḨḩḪḫḬḭḮḯḰḱḲḳḴḵḶḷḸḹḺḻḼḽḾḿṀṁṂṃṄṅṆṇṈṉṊṋṌṍṎṏṐṑṒṓṔṕṖṗṘṙṚṛṜṝṞṟṠṡṢṣṤṥṦṧṨṩṪṫṬṭṮṯṰṱṲṳṴṵṶṷṸṹṺṻṼṽṾṿẀẁẂẃẄẅẆẇẈẉẊẋẌẍẎẏẐẑẒẓẔẕẖẗẘẙẠạẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰựỲỳỴỵỶỷỸỹ', 'AAAAAACEEEEIIIINOOOOOUUUUYaaaaaaceeeeiiiinooooouuuuyyAaAaAaCcCcCcCcDdEeEeEeEeEeGgGgGgGgHhIiIiIiIiIJjKkLlLlLlNnNnNnOoOoOoRrRrRrSsSsSsSsTtTtUuUuUuUuUuUuWwYyYZzZzZzOoUuAaIiOoUuUuUuUuUuAaAaGgKkOoOojGgNnAaAaAaEeEeIiIiOoOoRrRrUuUuSsTtHhAaEeOoOoOoOoYyAaBbBbBbCcDdDdDdDdDdEeEeEeEeEeFfGgHhHhHhHhHhIiIiKkKkKkLlLlLlLlMmMmMmNnNnNnNnOoOoOoOoPpPpRrRrRrRrSsSsSsSsSsTtTtTtTtUuUuUuUuUuVvVvWwWwWwWwWwXxXxYyZzZzZzhtwyAaAaAaAaAaAaAaAaAaAaAaAaEeEeEeEeEeEeEeEeIiIiOoOoOoOoOoOoOoOoOoOoOoOoUuUuUuUuUuUuUuYyYyYyYy')
{%- endmacro %}


{#-
  Materialization of the incremental tables that replace rows by a key or by person
  (delete+insert, or a deleting pre-hook + append: staging and the event marts). dbt-spark offers keyed replacement (merge) only on Delta, Iceberg or
  Hudi tables; on plain Parquet tables Spark rebuilds them from the lake every night, which
  gives the same rows (a full rebuild is defined to equal the incremental result) and
  which a cluster does in minutes. A Delta deployment sets file_format + merge instead
  (docs/scale_out.md).
-#}
{% macro keyed_incremental() -%}
  {{ return(adapter.dispatch('keyed_incremental', 'personalization')()) }}
{%- endmacro %}

{% macro default__keyed_incremental() %}{{ return('incremental') }}{% endmacro %}

{% macro spark__keyed_incremental() %}{{ return('table') }}{% endmacro %}


{#-
  Materialization of a public mart kept as a view over an intermediate table
  (customer_events). The steps after dbt read the DuckDB warehouse; on Spark that is the
  serving copy, which takes the Parquet files of the tables a build made (spark.serve), and a
  view has none: there the mart is a table.
-#}
{% macro served_view() -%}
  {{ return(adapter.dispatch('served_view', 'personalization')()) }}
{%- endmacro %}

{% macro default__served_view() %}{{ return('view') }}{% endmacro %}

{% macro spark__served_view() %}{{ return('table') }}{% endmacro %}


{#-
  Incremental strategy of a table whose rows for one date a rerun replaces
  (segment_daily_counts): DuckDB deletes and inserts on the key; Spark overwrites the
  date's partition (the model is partitioned by that date on Spark).
-#}
{% macro date_replace_strategy() -%}
  {{ return(adapter.dispatch('date_replace_strategy', 'personalization')()) }}
{%- endmacro %}

{% macro default__date_replace_strategy() %}{{ return('delete+insert') }}{% endmacro %}

{% macro spark__date_replace_strategy() %}{{ return('insert_overwrite') }}{% endmacro %}


{#-
  A table that reads its previous self (segment_membership_history): DuckDB builds the new
  table beside the old one and swaps; dbt-spark drops a Parquet table before creating it
  again, so on Spark a pre-hook first copies the previous table to `<name>__previous` and
  the model reads that. Returns the relation to read, or none on the first build.
-#}
{% macro previous_self_relation() -%}
  {{ return(adapter.dispatch('previous_self_relation', 'personalization')()) }}
{%- endmacro %}

{% macro default__previous_self_relation() -%}
  {{ return(adapter.get_relation(database=this.database, schema=this.schema,
                                 identifier=this.identifier) if execute else none) }}
{%- endmacro %}

{% macro spark__previous_self_relation() -%}
  {{ return(adapter.get_relation(database=this.database, schema=this.schema,
                                 identifier=this.identifier ~ '__previous') if execute else none) }}
{%- endmacro %}

{#- The pre-hook: on Spark, copy the current table aside (or drop a stale copy). -#}
{% macro keep_previous_self() -%}
  {{ return(adapter.dispatch('keep_previous_self', 'personalization')()) }}
{%- endmacro %}

{% macro default__keep_previous_self() %}select 1{% endmacro %}

{% macro spark__keep_previous_self() -%}
  {%- set current = adapter.get_relation(database=this.database, schema=this.schema,
                                         identifier=this.identifier) if execute else none -%}
  {%- set copy = this.schema ~ '.' ~ this.identifier ~ '__previous' -%}
  {%- if current is not none -%}
    {%- do run_query('drop table if exists ' ~ copy) -%}
    create table {{ copy }} using parquet as select * from {{ current }}
  {%- else -%}
    drop table if exists {{ copy }}
  {%- endif -%}
{%- endmacro %}


{#- One row per day from `start_date` to `end_date` (both date expressions, inclusive), as
    column `as_of_date`. -#}
{% macro date_series(start_date, end_date) -%}
  {{ return(adapter.dispatch('date_series', 'personalization')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__date_series(start_date, end_date) -%}
    select cast(generated as date) as as_of_date
    from generate_series({{ start_date }}, {{ end_date }}, interval 1 day) as series(generated)  -- noqa: LT01
{%- endmacro %}

{% macro spark__date_series(start_date, end_date) -%}
    select explode(sequence({{ start_date }}, {{ end_date }}, interval 1 day)) as as_of_date
{%- endmacro %}


{#- dbt's cross-database dateadd on Spark. dbt-spark's own goes through unix seconds and
    `to_timestamp`, which is null on this project's timestamps without zone (a month window
    then selected nobody); Spark's timestampadd keeps the type and clamps month ends as
    DuckDB's interval arithmetic does. -#}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    timestampadd({{ datepart }}, {{ interval }}, {{ from_date_or_timestamp }})
{%- endmacro %}


{#- identity_hash_bucket (identity_incremental.sql) on Spark: DuckDB's hash through the
    session function of warehouse/spark.py, so both engines sample the same u pairs. -#}
{% macro spark__identity_hash_bucket(expr, buckets) -%}
    duckdb_hash_bucket(cast({{ expr }} as string), {{ buckets }})
{%- endmacro %}

{#- The table `identifier` in this model's schema as the last build left it, or none when it
    is missing or predates `column` (a layout from before the change that added it). Reads
    at execution only; DuckDB only unless `any_engine` (keeping state across builds means
    reading a table while it is replaced, which Spark refuses). #}
{% macro previous_build_relation(identifier, column, any_engine=false) %}
    {%- if not execute or (target.type != 'duckdb' and not any_engine) %}
        {{ return(none) }}
    {%- endif %}
    {%- set relation = adapter.get_relation(database=this.database, schema=this.schema,
                                            identifier=identifier) %}
    {%- if relation is none
           or column not in (adapter.get_columns_in_relation(relation) | map(attribute='name') | list) %}
        {{ return(none) }}
    {%- endif %}
    {{ return(relation) }}
{% endmacro %}


{#- A struct with named fields, `fields` = {name: expression}: DuckDB's struct_pack, Spark's
    named_struct. Structs compare field by field, so one serves as a composite sort key. -#}
{% macro struct_of(fields) -%}
  {{ return(adapter.dispatch('struct_of', 'personalization')(fields)) }}
{%- endmacro %}

{% macro default__struct_of(fields) -%}
  struct_pack({% for name, expr in fields.items() %}{{ name }} := {{ expr }}{{ ', ' if not loop.last }}{% endfor %})
{%- endmacro %}

{% macro spark__struct_of(fields) -%}
  named_struct({% for name, expr in fields.items() %}'{{ name }}', {{ expr }}{{ ', ' if not loop.last }}{% endfor %})
{%- endmacro %}


{#- Microseconds since the epoch of a timestamp (null stays null). -#}
{% macro epoch_micros(expr) -%}
  {{ return(adapter.dispatch('epoch_micros', 'personalization')(expr)) }}
{%- endmacro %}

{% macro default__epoch_micros(expr) -%}
  epoch_us({{ expr }})
{%- endmacro %}

{% macro spark__epoch_micros(expr) -%}
  {#- Timestamps here are TIMESTAMP_NTZ; read as the session's UTC (spark.py), exactly. -#}
  unix_micros(cast({{ expr }} as timestamp_ltz))
{%- endmacro %}


{#- `name as {{ materialized_cte() }} (...)`: compute a CTE once although the query reads it
    many times. DuckDB inlines a CTE without an aggregate into every reference (so an
    expensive projection, e.g. Soundex over every record, ran once per blocking rule); Spark
    has no such hint (its optimizer decides). -#}
{% macro materialized_cte() -%}
  {{ return(adapter.dispatch('materialized_cte', 'personalization')()) }}
{%- endmacro %}

{% macro default__materialized_cte() %}materialized{% endmacro %}

{% macro spark__materialized_cte() %}{% endmacro %}

{#- `name as {{ not_materialized_cte() }} (...)`: read a table a CTE merely names afresh at
    every reference, each taking only its columns and filters. DuckDB materializes a CTE
    read more than once, all its columns (1.5M person records at 1M people: ≈ 1.3 CPU s for a
    model that then reads few of them). -#}
{% macro not_materialized_cte() -%}
  {{ return(adapter.dispatch('not_materialized_cte', 'personalization')()) }}
{%- endmacro %}

{% macro default__not_materialized_cte() %}not materialized{% endmacro %}

{% macro spark__not_materialized_cte() %}{% endmacro %}

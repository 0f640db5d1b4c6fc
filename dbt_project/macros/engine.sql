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


{#- The scores of var('ds') written by personalization.scoring as Parquet. -#}
{% macro scores_relation() -%}
  {{ return(adapter.dispatch('scores_relation', 'personalization')()) }}
{%- endmacro %}

{% macro default__scores_relation() -%}
  {{ source('scores', 'customer_scores') }}
{%- endmacro %}

{% macro spark__scores_relation() -%}
  {%- do source('scores', 'customer_scores') -%}
  parquet.`{{ env_var('PERSONALIZATION_SCORES_DIR', env_var('PERSONALIZATION_HOME', '.personalization') ~ '/scores') }}/ds={{ var('ds') }}/customer_scores.parquet`
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
  {#- Spark 4's array_agg keeps input order only under WITHIN GROUP. -#}
  array_agg({{ expr }}) within group (order by {{ order_by }})
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
  Materialization of the append-mostly staging tables that replace rows by a key
  (delete+insert). dbt-spark offers keyed replacement (merge) only on Delta, Iceberg or
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

{#-
  `event_key` of stg_pixel__events: a 64-bit hash of the event id, so that the nightly probes
  of tonight's ids against every loaded one (97M at 1M people) scan 8-byte integers rather
  than the id strings (stg_pixel__events' already-loaded ids, the uniqueness test
  `unique_in_recent_deliveries` with `key`). A key is never taken for the id: the rows whose
  key matches are checked by their ids, in the deliveries that hold such a row only (DuckDB
  skips the other row groups), so two ids with one hash are still two events.
  docs/performance.md, "Event ids probed by their hash".
-#}

{#- The key of the id expression `id` (DuckDB's `hash`, UBIGINT; Spark rebuilds the table
    whole and never probes by it). -#}
{% macro event_key(id) -%}
  {{ return(adapter.dispatch('event_key', 'personalization')(id)) }}
{%- endmacro %}

{% macro default__event_key(id) -%}
  hash({{ id }})
{%- endmacro %}

{% macro spark__event_key(id) -%}
  xxhash64({{ id }})
{%- endmacro %}


{#- Whether every stored row has its key (an incremental run): a table built before the key
    has the column added by the night that first writes it, and its older rows' keys by
    that night's post-hook; the probes read the ids until then. -#}
{% macro event_keys_complete() -%}
  {%- if not execute -%}{{ return(false) }}{%- endif -%}
  {%- if 'event_key' not in (adapter.get_columns_in_relation(this) | map(attribute='name') | list) -%}
    {{ return(false) }}
  {%- endif -%}
  {{ return(run_query("select count(*) from " ~ this ~ " where event_key is null").columns[0].values()[0] == 0) }}
{%- endmacro %}


{#- Post-hook of stg_pixel__events: the keys of rows written before the column existed. -#}
{% macro fill_event_keys() -%}
  {%- if is_incremental() -%}
    update {{ this }} set event_key = {{ event_key('event_id') }} where event_key is null
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}

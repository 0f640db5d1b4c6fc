{#-
  Per-person marts that follow the changed persons (docs/performance.md, "Per-person marts
  that follow the changed persons"). A model whose row per person is a function of that
  person's input rows alone (no `ds`, no other person) keeps, per person, a fingerprint of
  those inputs (`input_fingerprint`); a night computes the fingerprints (one hash per input
  row and an aggregation: cheap next to the model's own logic and its write), recomputes
  only the persons whose fingerprint differs from the kept one, and leaves everyone else's
  row as it is. Nothing needs to know why a person changed (a new or updated record, a
  merge, a split, an erasure request, a rerun): any change of their inputs changes the
  fingerprint. A 64-bit hash: two different input sets give the same fingerprint with
  probability 2^-64 per changed person.
  The model tags itself `person_fingerprint`. A home built before the fingerprints gets the
  column added in place (append_new_columns): the first night recomputes and rewrites every
  person once (changed_persons). Any other column change needs a
  `--full-refresh` of the model.
-#}

{#- The hash of one input row (`alias`: a relation or CTE name in the from clause), with
    `tag` (a literal naming the input) when a person's fingerprint sums rows of several
    inputs. -#}
{% macro row_hash(alias, tag=none) -%}
  {{ return(adapter.dispatch('row_hash', 'personalization')(alias, tag)) }}
{%- endmacro %}

{% macro default__row_hash(alias, tag) -%}
    hash({% if tag is not none %}{{ tag }}, {% endif %}{{ alias }})
{%- endmacro %}

{% macro spark__row_hash(alias, tag) -%}
    xxhash64({% if tag is not none %}{{ tag }}, {% endif %}struct({{ alias }}.*))
{%- endmacro %}

{#- A person's fingerprint from the row hashes of their inputs (an aggregate): their sum,
    hashed. A sum, not an xor: equal rows (two alike order lines) do not cancel out, and
    the order of the rows does not matter. -#}
{% macro rows_fingerprint(row_hashes) -%}
  {{ return(adapter.dispatch('rows_fingerprint', 'personalization')(row_hashes)) }}
{%- endmacro %}

{% macro default__rows_fingerprint(row_hashes) -%}
    hash(sum({{ row_hashes }}))
{%- endmacro %}

{% macro spark__rows_fingerprint(row_hashes) -%}
    xxhash64(sum(cast({{ row_hashes }} as decimal(38, 0))))
{%- endmacro %}


{#- Config of such a model: delete+insert on unified_id; the placeholder rows of persons
    that are gone (below) are deleted by the post-hook (macros/changed_rows.sql). -#}
{% macro person_fingerprint_config() -%}
  {{ changed_rows_config('unified_id', 'input_fingerprint') }}
  {{ config(tags=['person_fingerprint'], on_schema_change='append_new_columns') }}
{%- endmacro %}


{#- The persons to (re)compute: in an incremental run those of `fingerprints` (CTE: one row
    per person, `unified_id`, `input_fingerprint`) whose fingerprint is not the kept one
    (new persons too); otherwise every person. -#}
{% macro changed_persons(fingerprints) -%}
    {#- A table built before the fingerprints has no such column yet (it is added after this
        select ran): every person is recomputed once. -#}
    {%- set kept = is_incremental() and execute and 'input_fingerprint' in (
        adapter.get_columns_in_relation(this) | map(attribute='name') | list) %}
    select unified_id from {{ fingerprints }}
    {%- if kept %}
    where not exists (
        select 1 from {{ this }} as kept
        where kept.unified_id = {{ fingerprints }}.unified_id
          and kept.input_fingerprint = {{ fingerprints }}.input_fingerprint)
    {%- endif %}
{%- endmacro %}


{#- Appended to the model's last select: in an incremental run, a placeholder row (the
    person, every other column null) for each kept person who has no inputs any more (ids
    merged away, erased records deleted), which the post-hook deletes. -#}
{% macro gone_persons(fingerprints) -%}
    {%- if is_incremental() %}
    union all by name
    select kept.unified_id from {{ this }} as kept
    where not exists (
        select 1 from {{ fingerprints }} where {{ fingerprints }}.unified_id = kept.unified_id)
    {%- endif %}
{%- endmacro %}

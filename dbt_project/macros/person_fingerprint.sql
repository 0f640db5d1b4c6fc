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
-#}

{#- The fingerprint of the rows of `alias` (a relation or CTE name) in a group: the xor of
    their row hashes, so the order of the rows does not matter. Rows must be unique in a
    group (two equal rows cancel out): give them their key. -#}
{% macro rows_fingerprint(alias) -%}
  {{ return(adapter.dispatch('rows_fingerprint', 'personalization')(alias)) }}
{%- endmacro %}

{% macro default__rows_fingerprint(alias) -%}
    bit_xor(hash({{ alias }}))
{%- endmacro %}

{% macro spark__rows_fingerprint(alias) -%}
    bit_xor(xxhash64(struct({{ alias }}.*)))
{%- endmacro %}

{#- One hash of several expressions (a person's fingerprints of different inputs). -#}
{% macro combined_fingerprint(expressions) -%}
  {{ return(adapter.dispatch('combined_fingerprint', 'personalization')(expressions)) }}
{%- endmacro %}

{% macro default__combined_fingerprint(expressions) -%}
    hash({{ expressions | join(', ') }})
{%- endmacro %}

{% macro spark__combined_fingerprint(expressions) -%}
    xxhash64({{ expressions | join(', ') }})
{%- endmacro %}


{#- Config of such a model: delete+insert on unified_id; the placeholder rows of persons
    that are gone (below) are deleted by the post-hook (macros/changed_rows.sql). -#}
{% macro person_fingerprint_config() -%}
  {{ changed_rows_config('unified_id', 'input_fingerprint') }}
{%- endmacro %}


{#- The persons to (re)compute: in an incremental run those of `fingerprints` (CTE: one row
    per person, `unified_id`, `input_fingerprint`) whose fingerprint is not the kept one
    (new persons too); otherwise every person. -#}
{% macro changed_persons(fingerprints) -%}
    select unified_id from {{ fingerprints }}
    {%- if is_incremental() %}
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

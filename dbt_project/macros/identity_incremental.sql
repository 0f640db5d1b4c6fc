{#-
    Helpers of incremental identity (docs/identity.md, "Incremental nights").

    The costly work of fuzzy matching is per record (blocking keys: Soundex codes) and per
    record pair (string similarities). Both depend only on the records' comparison fields,
    so they are kept in two incremental caches keyed by the records' fingerprints
    (int_identity__record_blocking_keys, int_identity__compared_pairs): a night computes
    them only for new or changed records and the pairs those records form. Everything
    learned (u, m, prior, term frequencies) and everything global (blocks and their sizes,
    components, clusters, ids) is recomputed from the whole population each night from
    those cached rows, so a night gives exactly what a full rebuild gives.
-#}

{#- Bump when the comparison levels or the blocking rules change: cached rows of an older
    version are then ignored and recomputed (a --full-refresh does the same). -#}
{% macro identity_cache_version() %}'v1'{% endmacro %}

{#- The record fields that blocking keys and comparison levels read. -#}
{% macro identity_comparison_fields() %}
    {{ return(['first_name_canonical', 'last_name_clean', 'birth_date', 'street_clean',
               'postcode_clean', 'city_clean', 'phone_e164', 'email_local_part']) }}
{% endmacro %}

{#- A fingerprint of a record's comparison fields: equal fingerprints, equal comparisons.
    Nulls and empty strings hash differently. -#}
{% macro identity_record_fingerprint(alias) -%}
    md5(
    {%- for field in identity_comparison_fields() %}
        case when {{ alias }}.{{ field }} is null then '0' else '1' || cast({{ alias }}.{{ field }} as varchar(200)) end
        {%- if not loop.last %} || '|' ||{% endif %}
    {%- endfor %}
    )
{%- endmacro %}

{#- A pseudo-random bucket in [0, buckets) of a string, stable from run to run. -#}
{% macro identity_hash_bucket(expr, buckets) %}
    {{ return(adapter.dispatch('identity_hash_bucket', 'personalization')(expr, buckets)) }}
{% endmacro %}

{% macro default__identity_hash_bucket(expr, buckets) -%}
    pmod(hash({{ expr }}), {{ buckets }})
{%- endmacro %}

{% macro duckdb__identity_hash_bucket(expr, buckets) -%}
    (hash({{ expr }}) % cast({{ buckets }} as ubigint))
{%- endmacro %}

{#- Pairs of `relation` grouped by their vector of comparison levels: one row per pattern
    with its pair count (what EM and the u estimate count over). -#}
{% macro identity_count_patterns(relation) %}
    select
        {%- for comparison in identity_comparison_names() %}
        {{ comparison }}_level,
        {%- endfor %}
        count(*) as pair_count
    from {{ relation }}
    group by
        {%- for comparison in identity_comparison_names() %}
        {{ comparison }}_level{% if not loop.last %},{% endif %}
        {%- endfor %}
{% endmacro %}

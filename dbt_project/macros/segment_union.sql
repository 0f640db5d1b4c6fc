{#-
    The segment registry at run time: every model in this project tagged `segment`.
    History models read segments through these relations (not ref), so a new segment
    file needs no edit here. Because dbt cannot see these as dependencies, the segments
    stage runs the history models in a second dbt invocation (docs/segments.md).
-#}

{% macro segment_nodes() %}
    {%- set found = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() -%}
            {%- if node.resource_type == 'model' and 'segment' in node.tags
                  and node.package_name == project_name -%}
                {%- do found.append(node) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(found | sort(attribute='name')) }}
{% endmacro %}

{#- expires_after_days of a segment node: its meta, else var('segment_expires_after_days'). -#}
{% macro segment_expires_after_days(node) %}
    {%- set meta = node.config.get('meta', {}) or node.get('meta', {}) or {} -%}
    {{ return(meta.get('expires_after_days', var('segment_expires_after_days')) | int) }}
{% endmacro %}

{#-
    One row per (segment, unified_id) for every segment that exists in the warehouse and is
    not listed in var('segment_history_skip') (its build failed this run: its history stays as
    it was). A segment whose table is missing is skipped with a warning, never fatal.
-#}
{% macro segment_union_members() %}
    {%- set skip = var('segment_history_skip', []) -%}
    {%- set parts = [] -%}
    {%- for node in segment_nodes() if node.name not in skip -%}
        {%- set relation = adapter.get_relation(database=node.database, schema=node.schema,
                                                identifier=node.alias or node.name) -%}
        {%- if relation is none -%}
            {%- do log("segment " ~ node.name ~ " has no table yet: left out of history", info=true) -%}
        {%- else -%}
            {%- do parts.append(
                "select distinct '" ~ node.name ~ "' as segment, cast(unified_id as string) as unified_id, "
                ~ segment_expires_after_days(node) ~ " as expires_after_days from " ~ relation
                ~ " where unified_id is not null") -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if parts -%}
        {{ parts | join('\nunion all\n') }}
    {%- else -%}
        select cast(null as string) as segment, cast(null as string) as unified_id,
               cast(null as integer) as expires_after_days
        where 1 = 0
    {%- endif -%}
{% endmacro %}

{#- Names of the segments this run processes, as a SQL list literal ('a', 'b'), for filters. -#}
{% macro segment_processed_names_sql() %}
    {%- set skip = var('segment_history_skip', []) -%}
    {%- set names = [] -%}
    {%- for node in segment_nodes() if node.name not in skip -%}
        {%- do names.append("'" ~ node.name ~ "'") -%}
    {%- endfor -%}
    {{ return(names | join(', ') if names else "''") }}
{% endmacro %}

{#-
    The segments a history run processes: every segment the project defines plus those only
    `history` knows (a deleted segment file closes its members' spells), minus
    var('segment_history_skip') (their build failed this run). One column, `segment`.
-#}
{% macro segment_processed_names(history) %}
    {%- set skip = var('segment_history_skip', []) -%}
    select segment from (
        {%- for node in segment_nodes() %}
        select '{{ node.name }}' as segment union all
        {%- endfor %}
        select distinct segment from {{ history }}
    ) as names
    where segment is not null
    {%- if skip %}
      and segment not in ({% for s in skip %}'{{ s }}'{{ ", " if not loop.last }}{% endfor %})
    {%- endif %}
    group by segment
{%- endmacro %}

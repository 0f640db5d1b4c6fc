{#-
  Golden-record survivorship (docs/warehouse.md "Survivorship"): one row per person with,
  for each attribute, the value(s) of the record that wins under that attribute's rule.

  `attributes`: a list of dicts, one per attribute (or group of columns taken together from
  one record, like an address):
    columns       {output name: expression over the records}
    when          the records that may win (e.g. "phone_e164 is not null")
    rule          most_recent (default): latest updated_at, then source priority, source id
                  preferred_source: source priority first, then most recent
                  most_frequent: the most frequent value of `frequency_of` among the
                  person's records, ties to the most recent
    frequency_of  (most_frequent) the expression whose frequency counts
  A person none of whose records qualify gets nulls for that attribute.

  Engine-neutral: one ranking per attribute in a single pass over the records, then one
  group by (no join per attribute).
-#}
{% macro survivorship(records, attributes, person='unified_id') -%}
  {%- set orders = {
      'most_recent': 'updated_at desc nulls last, source_priority, source_id',
      'preferred_source': 'source_priority, updated_at desc nulls last, source_id',
  } -%}
    select
        {{ person }}
        {%- for attribute in attributes %}
          {%- set i = loop.index %}
          {%- for name, expr in attribute.columns.items() %},
        max(case when survivor_rank_{{ i }} = 1 and ({{ attribute.when }}) then {{ expr }} end) as {{ name }}
          {%- endfor %}
        {%- endfor %}
    from (
        select
            *
            {%- for attribute in attributes %}
              {%- set rule = attribute.get('rule', 'most_recent') %}
              {%- if rule == 'most_frequent' %}
                {%- set order_by = 'survivor_frequency_' ~ loop.index ~ ' desc, ' ~ orders['most_recent'] %}
              {%- else %}
                {%- set order_by = orders[rule] %}
              {%- endif %},
            row_number() over (
                partition by {{ person }}
                order by case when {{ attribute.when }} then 0 else 1 end, {{ order_by }}
            ) as survivor_rank_{{ loop.index }}
            {%- endfor %}
        from (
            select
                *
                {%- for attribute in attributes %}
                  {%- if attribute.get('rule') == 'most_frequent' %},
                count(*) over (partition by {{ person }}, {{ attribute.frequency_of }})
                    as survivor_frequency_{{ loop.index }}
                  {%- endif %}
                {%- endfor %}
            from {{ records }}
        ) as counted
    ) as ranked
    group by {{ person }}
{%- endmacro %}

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

  Engine-neutral and one hash aggregation: per attribute, min_by(the winner's columns as a
  struct, the rule's order as a struct key) over the records that qualify. The key ends in
  (source_priority, source_id), unique per record, so the winner is one record whatever the
  engine. (A row_number() window per attribute sorted the records once per attribute: 3×
  the CPU.)
-#}
{% macro survivorship(records, attributes, person='unified_id') -%}
  {%- set recency = {
      'undated': 'updated_at is null',
      'newest_first': 'coalesce(-' ~ epoch_micros('updated_at') ~ ', 0)',
  } -%}
  {%- set ties = {'source_priority': 'source_priority', 'source_id': 'source_id'} -%}
    select
        {{ person }}
        {%- for attribute in attributes %}
          {%- set i = loop.index %}
          {%- for name in attribute.columns %},
        survivor_{{ i }}.{{ name }} as {{ name }}
          {%- endfor %}
        {%- endfor %}
    from (
        select
            {{ person }}
            {%- for attribute in attributes %}
              {%- set rule = attribute.get('rule', 'most_recent') %}
              {%- set key = {} %}
              {%- if rule == 'most_frequent' %}
                {%- do key.update({'frequent_first': '-survivor_frequency_' ~ loop.index}) %}
              {%- endif %}
              {%- if rule == 'preferred_source' %}
                {%- do key.update({'source_priority': 'source_priority'}) %}
              {%- endif %}
              {%- do key.update(recency) %}
              {%- do key.update(ties) %},
            min_by(
                {{ struct_of(attribute.columns) }},
                {{ struct_of(key) }}
            ) filter (where {{ attribute.when }}) as survivor_{{ loop.index }}
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
        group by {{ person }}
    ) as survivors
{%- endmacro %}

{#- The key of an event's person: its shop account and cookie, nulls kept apart from any
    real id (a unit separator cannot occur in the lake's ids). -#}
{% macro event_person_key(customer_id, anonymous_id) -%}
  coalesce('a' || {{ customer_id }}, 'n') || chr(31) || coalesce('c' || {{ anonymous_id }}, 'n')
{%- endmacro %}

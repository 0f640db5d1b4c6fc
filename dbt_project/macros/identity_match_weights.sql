{#-
    Fellegi-Sunter m/u probabilities per comparison level (docs/identity.md explains and
    tabulates them). m = P(level | same person), u = P(level | different persons); a level
    adds log2(m / u) to the pair's match weight. Tune here, then rerun
    `personalization evaluate-identity` on generated data.
-#}
{% macro identity_mu_table() %}
    {{ return({
        'first_exact': [0.90, 0.01], 'first_close': [0.06, 0.005],
        'first_fuzzy': [0.02, 0.03], 'first_other': [0.005, 0.955],
        'last_exact': [0.90, 0.002], 'last_close': [0.06, 0.002],
        'last_fuzzy': [0.02, 0.02], 'last_other': [0.005, 0.976],
        'birth_exact': [0.95, 0.0001], 'birth_typo': [0.03, 0.001], 'birth_other': [0.003, 0.9999],
        'address_exact': [0.80, 0.0005], 'address_same_street': [0.03, 0.0001],
        'address_same_postcode': [0.05, 0.002], 'address_other': [0.08, 0.9975],
        'phone_exact': [0.60, 0.00001], 'phone_other': [0.40, 0.99999],
        'email_local_exact': [0.10, 0.002], 'email_local_stem': [0.25, 0.01],
        'email_local_other': [0.65, 0.9995],
    }) }}
{% endmacro %}

{#- The log-likelihood weight of one comparison level, as a SQL constant. -#}
{% macro identity_weight(level) -%}
    {%- set mu = identity_mu_table()[level] -%}
    log2({{ mu[0] }} / {{ mu[1] }})
{%- endmacro %}

{#- Weight of a name comparison: exact, Jaro-Winkler >= 0.92, >= 0.80, other; 0 if missing. -#}
{% macro identity_name_weight(kind, a, b) -%}
    case
        when {{ a }} is null or {{ b }} is null then 0
        when {{ a }} = {{ b }} then {{ identity_weight(kind ~ '_exact') }}
        when jaro_winkler_similarity({{ a }}, {{ b }}) >= 0.92 then {{ identity_weight(kind ~ '_close') }}
        when jaro_winkler_similarity({{ a }}, {{ b }}) >= 0.80 then {{ identity_weight(kind ~ '_fuzzy') }}
        else {{ identity_weight(kind ~ '_other') }}
    end
{%- endmacro %}

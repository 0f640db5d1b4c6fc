{#-
    The Fellegi-Sunter comparisons of fuzzy identity matching: their levels, and the weak
    prior (m0, u0) that the per-run estimates start from.

    m = P(level | same person), u = P(level | different persons); a level adds log2(m / u) to
    a pair's match weight. m and u are NOT these numbers: they are learned at every build,
    u from random record pairs (int_identity__u_probabilities) and m by expectation-
    maximisation over the blocked pairs (int_identity__m_probabilities). m0/u0 only act as a
    Dirichlet prior worth var identity_m_prior_pairs (m) and var identity_u_prior_pairs (u)
    pairs, so a handful of hand-made records still get sensible weights while a real
    population's own counts dominate (docs/identity.md).

    Level codes per comparison, highest = strongest agreement; -1 = a side is missing (adds 0).
-#}
{% macro identity_comparison_levels() %}
    {{ return({
        'first_name': {
            4: ['exact', 0.85, 0.01],
            3: ['one edit or Jaro-Winkler >= 0.92', 0.08, 0.004],
            2: ['two edits or Jaro-Winkler >= 0.85', 0.03, 0.02],
            1: ['initial', 0.01, 0.005],
            0: ['other', 0.03, 0.961],
        },
        'last_name': {
            4: ['exact', 0.85, 0.002],
            3: ['one edit or Jaro-Winkler >= 0.92', 0.08, 0.002],
            2: ['two edits or Jaro-Winkler >= 0.85', 0.03, 0.01],
            1: ['initial', 0.01, 0.002],
            0: ['other', 0.03, 0.984],
        },
        'birth_date': {
            3: ['exact', 0.90, 0.0001],
            2: ['day/month swapped or one character', 0.05, 0.002],
            1: ['two characters', 0.02, 0.02],
            0: ['other', 0.03, 0.9779],
        },
        'address': {
            5: ['same street and postcode', 0.70, 0.00005],
            4: ['street and postcode within one edit', 0.05, 0.00002],
            3: ['same street, other postcode', 0.03, 0.0001],
            2: ['same postcode, a similar street (Jaro-Winkler >= 0.85) or house number', 0.05, 0.0005],
            1: ['same city, or the same or a neighbouring postcode', 0.07, 0.0215],
            0: ['other', 0.10, 0.97773],
        },
        'phone': {
            2: ['exact', 0.60, 0.00001],
            1: ['one digit', 0.05, 0.0001],
            0: ['other', 0.35, 0.99989],
        },
        'email_local_part': {
            2: ['same mailbox name, other domain', 0.10, 0.0002],
            1: ['same mailbox name without digits and punctuation', 0.20, 0.0005],
            0: ['other', 0.70, 0.9993],
        },
    }) }}
{% endmacro %}

{#- The comparison names, in a fixed order. -#}
{% macro identity_comparison_names() %}
    {{ return(['first_name', 'last_name', 'birth_date', 'address', 'phone', 'email_local_part']) }}
{% endmacro %}

{#- A values list of the prior: (comparison, level, m0, u0). -#}
{% macro identity_prior_rows() -%}
    {%- set rows = [] -%}
    {%- for comparison, levels in identity_comparison_levels().items() -%}
        {%- for level, spec in levels.items() -%}
            {%- do rows.append("('" ~ comparison ~ "', " ~ level ~ ", " ~ spec[1] ~ ", " ~ spec[2] ~ ")") -%}
        {%- endfor -%}
    {%- endfor -%}
    select
        comparison,
        cast(comparison_level as integer) as comparison_level,
        cast(m_prior as double) as m_prior,
        cast(u_prior as double) as u_prior
    from (values {{ rows | join(', ') }}) as prior_rows (comparison, comparison_level, m_prior, u_prior)
{%- endmacro %}

{#-
    Hard conditions on a pair's comparison levels, beside its match probability:
    - evidence beyond the names: birth date, address (the same postcode with a similar
      street or house number at least; a similar street in another postcode is not enough:
      street names repeat from town to town) or phone agree at least roughly. Two people who
      share only a name (and a town, a postcode, or a mailbox name) are never merged,
      however rare the name: a mailbox name is mostly built from the name, so namesakes at
      different providers share it, and on both generators pairs whose only evidence beyond
      their (nearly) equal names was the mailbox name, a postcode one edit away or the same
      postcode with another street were almost all two people (docs/identity.md, "Neighbours
      and mailboxes are not evidence");
    - a first name that differs (level 0), is two edits apart (level 2: `maria` / `marco`)
      or is missing on one side needs the birth date to agree: the first name is what tells
      the members of one household apart, and they agree on last name, address and phone,
      evidence that is not independent (the model's assumption) and would otherwise be
      counted three times (docs/identity.md, "Households and the threshold");
    - birth dates that differ clearly (level 0: more than two characters, not a swap) are a
      contradiction, as in the cluster conflict guard: same-name relatives at one address
      (father and son) agree on everything else, and a mailbox name built from that name.
-#}
{#- A pair is a match: its probability (an expression or column) reaches the threshold and it
    passes identity_match_guard. -#}
{% macro identity_is_match(probability, threshold) -%}
    ({{ probability }} >= {{ threshold }} and {{ identity_match_guard() }})
{%- endmacro %}

{% macro identity_match_guard() -%}
    ({{ identity_match_guard_failure() }} is null)
{%- endmacro %}

{#- The first condition of identity_match_guard a pair fails ('birth dates', 'first name',
    'names only'), null when it passes. Levels are never null (-1 = a side is missing).
    personalization/warehouse/misses.py renders this macro too: one definition of the guard. -#}
{% macro identity_match_guard_failure() -%}
    case
        when birth_date_level = 0 then 'birth dates'
        when first_name_level in (-1, 0, 2) and birth_date_level < 2 then 'first name'
        when not (birth_date_level >= 2 or address_level in (2, 4, 5) or phone_level >= 1)
            then 'names only'
    end
{%- endmacro %}

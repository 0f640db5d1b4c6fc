{#-
    Comparison levels of a record pair (levels and their meaning: identity_comparison_levels).

    Used for the blocked pairs (int_identity__pair_comparisons) and for the random pairs that
    estimate u (int_identity__u_probabilities), so both see exactly the same levels. Reads
    columns <field>_a / <field>_b of `relation`: first, last, birth, street, postcode, city,
    phone, email_local. String similarity goes through the dispatched
    identity_jaro_winkler / identity_edit_distance, the only engine-specific functions here.
-#}

{% macro identity_jaro_winkler(a, b) %}
    {{ return(adapter.dispatch('identity_jaro_winkler', 'personalization')(a, b)) }}
{% endmacro %}

{% macro default__identity_jaro_winkler(a, b) -%}
    jaro_winkler_similarity({{ a }}, {{ b }})
{%- endmacro %}

{#- Damerau-Levenshtein where the engine has it (a transposition is one edit). -#}
{% macro identity_edit_distance(a, b) %}
    {{ return(adapter.dispatch('identity_edit_distance', 'personalization')(a, b)) }}
{% endmacro %}

{% macro default__identity_edit_distance(a, b) -%}
    levenshtein({{ a }}, {{ b }})
{%- endmacro %}

{% macro duckdb__identity_edit_distance(a, b) -%}
    damerau_levenshtein({{ a }}, {{ b }})
{%- endmacro %}

{#- Level of one name comparison: 4 exact, 3 one edit / JW >= 0.92, 2 two edits (names of
    five letters or more) / JW >= 0.85, 1 one side is the other's initial, 0 other. `jw` is
    the pair's Jaro-Winkler similarity if already computed; the edit distance is only
    computed when Jaro-Winkler leaves it open (0.7 <= JW < 0.92): most pairs are far apart. -#}
{% macro identity_name_level(a, b, jw=none) -%}
    {%- set jw = jw or identity_jaro_winkler(a, b) -%}
    {%- set ed = identity_edit_distance(a, b) -%}
    case
        when {{ a }} is null or {{ b }} is null then -1
        when {{ a }} = {{ b }} then 4
        when length(replace({{ a }}, '.', '')) = 1 or length(replace({{ b }}, '.', '')) = 1 then
            case when left({{ a }}, 1) = left({{ b }}, 1) then 1 else 0 end
        when {{ jw }} >= 0.92 then 3
        when {{ jw }} < 0.7 then 0
        when {{ ed }} <= 1 then 3
        when {{ jw }} >= 0.85 or ({{ ed }} <= 2 and least(length({{ a }}), length({{ b }})) >= 5) then 2
        else 0
    end
{%- endmacro %}

{#- Select list of the comparison levels over `relation` (one row per pair). Names count in
    whichever orientation (first-first + last-last, or swapped) agrees better; `first_value`
    / `last_value` carry the agreed value of an exact name level, for the term-frequency
    adjustment. String similarities are computed once per pair in `similarities`. -#}
{% macro identity_compare_pairs(relation, keys) %}
    with similarities as (
        select
            {{ keys }},
            first_a, first_b, last_a, last_b,
            birth_a, birth_b, street_a, street_b, postcode_a, postcode_b, city_a, city_b,
            phone_a, phone_b, email_local_a, email_local_b,
            {{ identity_jaro_winkler('first_a', 'first_b') }} as jw_first,
            {{ identity_jaro_winkler('last_a', 'last_b') }} as jw_last,
            {{ identity_jaro_winkler('first_a', 'last_b') }} as jw_first_last,
            {{ identity_jaro_winkler('last_a', 'first_b') }} as jw_last_first,
            {{ identity_edit_distance('cast(birth_a as varchar(10))', 'cast(birth_b as varchar(10))') }} as ed_birth,
            {{ identity_jaro_winkler('street_a', 'street_b') }} as jw_street,
            regexp_extract(street_a, '[0-9]+', 0) as house_a,
            regexp_extract(street_b, '[0-9]+', 0) as house_b,
            {{ identity_edit_distance('postcode_a', 'postcode_b') }} as ed_postcode,
            {{ identity_edit_distance('phone_a', 'phone_b') }} as ed_phone
        from {{ relation }}
    ),

    oriented as (
        select
            *,
            {{ identity_name_level('first_a', 'first_b', 'jw_first') }} as first_straight,
            {{ identity_name_level('last_a', 'last_b', 'jw_last') }} as last_straight,
            {{ identity_name_level('first_a', 'last_b', 'jw_first_last') }} as first_swapped,
            {{ identity_name_level('last_a', 'first_b', 'jw_last_first') }} as last_swapped
        from similarities
    ),

    levels as (
        select
            {{ keys }},
            case when first_swapped + last_swapped > first_straight + last_straight
                then first_swapped else first_straight end as first_name_level,
            case when first_swapped + last_swapped > first_straight + last_straight
                then last_swapped else last_straight end as last_name_level,
            case when first_swapped + last_swapped > first_straight + last_straight
                then last_a else first_a end as first_value,
            case when first_swapped + last_swapped > first_straight + last_straight
                then first_a else last_a end as last_value,
            case
                when birth_a is null or birth_b is null then -1
                when birth_a = birth_b then 3
                when (month(birth_a) = day(birth_b) and day(birth_a) = month(birth_b) and year(birth_a) = year(birth_b))
                    or ed_birth <= 1 then 2
                when ed_birth <= 2 then 1
                else 0
            end as birth_date_level,
            case
                when (street_a is null or street_b is null) and (postcode_a is null or postcode_b is null)
                    and (city_a is null or city_b is null) then -1
                when street_a = street_b and postcode_a = postcode_b then 5
                when jw_street >= 0.92 and ed_postcode <= 1 then 4
                when jw_street >= 0.92 then 3
                -- A postcode is a district: two records in it with other streets and house
                -- numbers are neighbours, and a postcode one edit away is the next district;
                -- both are the town's evidence, no more ("Neighbours and mailboxes are not
                -- evidence", docs/identity.md).
                when postcode_a = postcode_b
                    and (jw_street >= 0.85 or (house_a <> '' and house_a = house_b)) then 2
                when ed_postcode <= 1 or city_a = city_b then 1
                else 0
            end as address_level,
            case when street_a = street_b then street_a end as street_value,
            case when postcode_a = postcode_b then postcode_a end as postcode_value,
            case when city_a = city_b then city_a end as city_value,
            case
                when phone_a is null or phone_b is null then -1
                when phone_a = phone_b then 2
                when ed_phone <= 1 then 1
                else 0
            end as phone_level,
            case
                when email_local_a is null or email_local_b is null then -1
                when email_local_a = email_local_b and length(email_local_a) >= 4 then 2
                when {{ identity_email_stem('email_local_a') }} = {{ identity_email_stem('email_local_b') }}
                    and length({{ identity_email_stem('email_local_a') }}) >= 6 then 1
                else 0
            end as email_local_part_level
        from oriented
    )

    select * from levels
{% endmacro %}

{#- A mailbox name without digits and punctuation (anna.schmidt85 -> annaschmidt). -#}
{% macro identity_email_stem(local_part) %}
    {{ return(adapter.dispatch('identity_email_stem', 'personalization')(local_part)) }}
{% endmacro %}

{#- Spark's regexp_replace replaces every match. -#}
{% macro default__identity_email_stem(local_part) -%}
    regexp_replace({{ local_part }}, '[^a-z]', '')
{%- endmacro %}

{% macro duckdb__identity_email_stem(local_part) -%}
    regexp_replace({{ local_part }}, '[^a-z]', '', 'g')
{%- endmacro %}


{#- The fields identity_compare_pairs reads, from the two records `a` and `b` of a pair. -#}
{% macro identity_pair_sides(a, b) -%}
    {%- set fields = [('first_name_canonical', 'first'), ('last_name_clean', 'last'),
                      ('birth_date', 'birth'), ('street_clean', 'street'),
                      ('postcode_clean', 'postcode'), ('city_clean', 'city'),
                      ('phone_e164', 'phone'), ('email_local_part', 'email_local')] -%}
    {%- for column, name in fields %}
        {{ a }}.{{ column }} as {{ name }}_a,
        {{ b }}.{{ column }} as {{ name }}_b{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#-
    American Soundex of a (clean, lower-case, accent-free) name, e.g. 'robert' -> 'r163'.
    Used as a phonetic blocking key so 'meyer'/'meier'/'mayer' share a block. RE2 has no
    back-references, so runs of the same digit are collapsed one digit at a time; h and w
    are dropped before collapsing (they do not separate equal codes), vowels after it
    (they do). Null or letter-less input gives null.
-#}
{% macro identity_soundex(raw_name) %}
    {%- set name = strip_accents("lower(" ~ raw_name ~ ")") %}
    nullif(
        left(
            left({{ regexp_replace_all(name, '[^a-z]', '') }}, 1)
            || replace(
                substr(
                    {%- set coded = "replace(translate(" ~ regexp_replace_all(name, '[^a-z]', '') ~ ", 'bfpvcgjkqsxzdtlmnraeiouyhw', '11112222222233455600000099'), '9', '')" %}
                    {%- set state = namespace(sql=coded) %}
                    {%- for digit in range(0, 7) %}
                        {%- set state.sql = regexp_replace_all(state.sql, digit ~ '+', digit | string) %}
                    {%- endfor %}
                    {{ state.sql }},
                    2
                ),
                '0',
                ''
            )
            || '000',
            4
        ),
        '000'
    )
{% endmacro %}

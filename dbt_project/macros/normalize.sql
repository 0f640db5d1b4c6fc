{#-
  Shared normalisation used by the staging models. Each macro returns a SQL expression.
  They are written with the engine primitives of engine.sql (regexp_replace_all,
  regexp_matches_fully, sha256_hex, strip_accents), so one text runs on DuckDB and Spark; an
  engine that needs more overrides one as `<adapter>__<name>` (docs/scale_out.md).
-#}

{% macro clean_text(expr) -%}
  {{ return(adapter.dispatch('clean_text', 'personalization')(expr)) }}
{%- endmacro %}

{% macro default__clean_text(expr) -%}
  nullif(trim({{ regexp_replace_all(expr, '\\s+', ' ') }}), '')
{%- endmacro %}



{#- lower(trim(email)); empty -> null. Kept even when invalid (the raw value, for audit). -#}
{% macro clean_email(expr) -%}
  nullif(lower(trim({{ expr }})), '')
{%- endmacro %}


{% macro is_valid_email(expr) -%}
  {{ return(adapter.dispatch('is_valid_email', 'personalization')(expr)) }}
{%- endmacro %}

{#- The one rule for a valid email (docs/privacy.md): the pattern and reserved TLDs are vars in
    dbt_project.yml that personalization/privacy/emails.py reads too; this renders the same
    expression as its valid_email_sql(). -#}
{% macro default__is_valid_email(expr) -%}
  coalesce({{ regexp_matches_fully('trim(' ~ expr ~ ')', var('valid_email_pattern')) }}
    and length(trim({{ expr }})) <= 254
    and length(split_part(trim({{ expr }}), '@', 1)) <= 64
    and lower(regexp_extract(trim({{ expr }}), '[^.]*$', 0)) not in (
      {%- for tld in var("reserved_email_tlds") %}'{{ tld }}'{{ ", " if not loop.last }}{% endfor -%}
    ), false)
{%- endmacro %}



{#-
  The matching key for an email: +tag stripped from the local part; for gmail.com and
  googlemail.com (same mailbox) also the dots removed and the domain folded to gmail.com.
  Null for an invalid email, so junk never matches junk.
-#}
{% macro normalize_email(expr) -%}
  {{ return(adapter.dispatch('normalize_email', 'personalization')(expr)) }}
{%- endmacro %}

{% macro default__normalize_email(expr) -%}
  case when {{ is_valid_email(expr) }} then
    case
      when split_part(lower(trim({{ expr }})), '@', 2) in ('gmail.com', 'googlemail.com') then
        replace(split_part(split_part(lower(trim({{ expr }})), '@', 1), '+', 1), '.', '') || '@gmail.com'
      else
        split_part(split_part(lower(trim({{ expr }})), '@', 1), '+', 1)
        || '@' || split_part(lower(trim({{ expr }})), '@', 2)
    end
  end
{%- endmacro %}



{#- sha256 hex of lower(trim(email)): the same hash the pixel sends in email links. -#}
{% macro email_sha256(expr) -%}
  {{ return(adapter.dispatch('email_sha256', 'personalization')(expr)) }}
{%- endmacro %}

{% macro default__email_sha256(expr) -%}
  case when {{ is_valid_email(expr) }} then {{ sha256_hex('lower(trim(' ~ expr ~ '))') }} end
{%- endmacro %}



{#- Names and cities for matching: accents stripped, lower case, whitespace collapsed. -#}
{% macro clean_name(expr) -%}
  {{ return(adapter.dispatch('clean_name', 'personalization')(expr)) }}
{%- endmacro %}

{% macro default__clean_name(expr) -%}
  nullif(trim({{ regexp_replace_all('lower(' ~ strip_accents(expr) ~ ')', '\\s+', ' ') }}), '')
{%- endmacro %}



{#- Street for matching: like a name, punctuation dropped, common words abbreviated. -#}
{% macro clean_street(expr) -%}
  {{ return(adapter.dispatch('clean_street', 'personalization')(expr)) }}
{%- endmacro %}

{% macro default__clean_street(expr) -%}
  {%- set state = namespace(sql="lower(" ~ strip_accents("replace(" ~ expr ~ ", 'ß', 'ss')") ~ ")") -%}
  {%- for pattern, replacement in [('[^a-z0-9 ]+', ' '), ('\\bstreet\\b', 'st'), ('\\bavenue\\b', 'ave'),
                                   ('\\broad\\b', 'rd'), ('strasse\\b', 'str'), ('\\s+', ' ')] -%}
    {%- set state.sql = regexp_replace_all(state.sql, pattern, replacement) -%}
  {%- endfor %}
  nullif(trim({{ state.sql }}), '')
{%- endmacro %}



{#- Postcode for matching: upper case, letters and digits only ("sw1a 1aa" -> "SW1A1AA"). -#}
{% macro clean_postcode(expr) -%}
  {{ return(adapter.dispatch('clean_postcode', 'personalization')(expr)) }}
{%- endmacro %}

{% macro default__clean_postcode(expr) -%}
  nullif({{ regexp_replace_all('upper(' ~ expr ~ ')', '[^A-Z0-9]', '') }}, '')
{%- endmacro %}


{#- The contact columns CRM contacts and shop accounts share, typed and normalised the same
    way (identity resolution compares them field by field). -#}
{% macro person_columns() %}
        {{ clean_email('email') }} as email,
        {{ is_valid_email('email') }} as is_email_valid,
        {{ normalize_email('email') }} as email_normalized,
        {{ email_sha256('email') }} as email_sha256,
        {{ clean_text('first_name') }} as first_name,
        {{ clean_text('last_name') }} as last_name,
        {{ clean_name('first_name') }} as first_name_clean,
        {{ clean_name('last_name') }} as last_name_clean,
        {{ clean_text('phone') }} as phone,
        {{ phone_to_e164('phone', 'country') }} as phone_e164,
        {{ clean_text('street') }} as street,
        {{ clean_street('street') }} as street_clean,
        {{ clean_text('city') }} as city,
        {{ clean_name('city') }} as city_clean,
        {{ clean_text('postcode') }} as postcode,
        {{ clean_postcode('postcode') }} as postcode_clean,
        nullif(upper(trim(country)), '') as country
{%- endmacro %}

{#- Latest version of each record among the versions (`relation`, with delivered_on and
    line_number) delivered up to `ds`: a later updated_at supersedes; on a tie the later
    delivery, then the later line, wins. `keys` (a select of key values): only those records
    (all their versions are ranked). -#}
{% macro latest_version(relation, key, keys=none) %}
    select {{ star_except(['version_rank']) }}
    from (
        select
            *,
            row_number() over (
                partition by {{ key }}
                order by updated_at desc nulls last, delivered_on desc, line_number desc
            ) as version_rank
        from {{ relation }}
        where delivered_on <= date '{{ var("ds") }}'
        {%- if keys is not none %}
          and {{ key }} in ({{ keys }})
        {%- endif %}
    ) as versions
    where version_rank = 1
{%- endmacro %}

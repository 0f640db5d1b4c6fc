{#-
  Shared normalisation used by the staging models. Each macro returns a SQL expression.
  Engine-specific SQL (regex flags, sha256, strip_accents) goes through adapter.dispatch so a
  Spark or Trino version can be added as `spark__<name>` / `trino__<name>` without touching
  the models (DESIGN.md "Beyond one machine").
-#}

{% macro clean_text(expr) -%}
  {{ return(adapter.dispatch('clean_text', 'personalization')(expr)) }}
{%- endmacro %}

{% macro duckdb__clean_text(expr) -%}
  nullif(trim(regexp_replace({{ expr }}, '\s+', ' ', 'g')), '')
{%- endmacro %}

{% macro default__clean_text(expr) -%}
  {{ exceptions.raise_compiler_error("clean_text: no implementation for adapter " ~ adapter.type() ~ "; add " ~ adapter.type() ~ "__clean_text") }}
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
{% macro duckdb__is_valid_email(expr) -%}
  coalesce(regexp_full_match(trim({{ expr }}), '{{ var("valid_email_pattern") }}')
    and length(trim({{ expr }})) <= 254
    and length(split_part(trim({{ expr }}), '@', 1)) <= 64
    and lower(regexp_extract(trim({{ expr }}), '[^.]*$')) not in (
      {%- for tld in var("reserved_email_tlds") %}'{{ tld }}'{{ ", " if not loop.last }}{% endfor -%}
    ), false)
{%- endmacro %}

{% macro default__is_valid_email(expr) -%}
  {{ exceptions.raise_compiler_error("is_valid_email: no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}


{#-
  The matching key for an email: +tag stripped from the local part; for gmail.com and
  googlemail.com (same mailbox) also the dots removed and the domain folded to gmail.com.
  Null for an invalid email, so junk never matches junk.
-#}
{% macro normalize_email(expr) -%}
  {{ return(adapter.dispatch('normalize_email', 'personalization')(expr)) }}
{%- endmacro %}

{% macro duckdb__normalize_email(expr) -%}
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

{% macro default__normalize_email(expr) -%}
  {{ exceptions.raise_compiler_error("normalize_email: no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}


{#- sha256 hex of lower(trim(email)): the same hash the pixel sends in email links. -#}
{% macro email_sha256(expr) -%}
  {{ return(adapter.dispatch('email_sha256', 'personalization')(expr)) }}
{%- endmacro %}

{% macro duckdb__email_sha256(expr) -%}
  case when {{ is_valid_email(expr) }} then sha256(lower(trim({{ expr }}))) end
{%- endmacro %}

{% macro default__email_sha256(expr) -%}
  {{ exceptions.raise_compiler_error("email_sha256: no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}


{#- Names and cities for matching: accents stripped, lower case, whitespace collapsed. -#}
{% macro clean_name(expr) -%}
  {{ return(adapter.dispatch('clean_name', 'personalization')(expr)) }}
{%- endmacro %}

{% macro duckdb__clean_name(expr) -%}
  nullif(trim(regexp_replace(lower(strip_accents({{ expr }})), '\s+', ' ', 'g')), '')
{%- endmacro %}

{% macro default__clean_name(expr) -%}
  {{ exceptions.raise_compiler_error("clean_name: no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}


{#- Street for matching: like a name, punctuation dropped, common words abbreviated. -#}
{% macro clean_street(expr) -%}
  {{ return(adapter.dispatch('clean_street', 'personalization')(expr)) }}
{%- endmacro %}

{% macro duckdb__clean_street(expr) -%}
  nullif(trim(regexp_replace(
    regexp_replace(regexp_replace(regexp_replace(regexp_replace(
      regexp_replace(lower(strip_accents(replace({{ expr }}, 'ß', 'ss'))), '[^a-z0-9 ]+', ' ', 'g'),
      '\bstreet\b', 'st', 'g'),
      '\bavenue\b', 'ave', 'g'),
      '\broad\b', 'rd', 'g'),
      'strasse\b', 'str', 'g'),
    '\s+', ' ', 'g')), '')
{%- endmacro %}

{% macro default__clean_street(expr) -%}
  {{ exceptions.raise_compiler_error("clean_street: no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}


{#- Postcode for matching: upper case, letters and digits only ("sw1a 1aa" -> "SW1A1AA"). -#}
{% macro clean_postcode(expr) -%}
  {{ return(adapter.dispatch('clean_postcode', 'personalization')(expr)) }}
{%- endmacro %}

{% macro duckdb__clean_postcode(expr) -%}
  nullif(regexp_replace(upper({{ expr }}), '[^A-Z0-9]', '', 'g'), '')
{%- endmacro %}

{% macro default__clean_postcode(expr) -%}
  {{ exceptions.raise_compiler_error("clean_postcode: no implementation for adapter " ~ adapter.type()) }}
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

{#- Latest version of each record: a later updated_at supersedes; on a tie the later
    delivery, then the later line, wins. -#}
{% macro latest_version(relation, key) %}
    select *
    from {{ relation }}
    qualify row_number() over (
        partition by {{ key }}
        order by updated_at desc nulls last, delivered_on desc, line_number desc
    ) = 1
{%- endmacro %}

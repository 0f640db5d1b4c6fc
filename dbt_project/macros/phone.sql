{#-
  Phone numbers to E.164 ("+4930123456").
  - digits only; a leading "+" or "00" means the number is already international;
  - otherwise national: leading trunk zeros dropped (not for Italy, whose leading 0 is part
    of the number) and the country's calling code (by the ISO alpha-2 `country`) prefixed;
    NANP (US/CA) numbers given as 1 + 10 digits lose the leading 1 first;
  - junk gives null: nothing left, all one repeated digit (0000000, 1111111), a national part
    shorter than 6 digits, more than 15 digits in all, or an unknown country.
-#}

{% macro country_calling_code(country_expr) -%}
  case upper(trim({{ country_expr }}))
    {%- for iso, code in personalization.calling_codes().items() %}
    when '{{ iso }}' then '{{ code }}'
    {%- endfor %}
  end
{%- endmacro %}

{% macro calling_codes() -%}
  {{ return({
    'US': '1', 'CA': '1', 'GB': '44', 'IE': '353', 'DE': '49', 'AT': '43', 'CH': '41',
    'FR': '33', 'BE': '32', 'NL': '31', 'LU': '352', 'ES': '34', 'PT': '351', 'IT': '39',
    'DK': '45', 'SE': '46', 'NO': '47', 'FI': '358', 'PL': '48', 'CZ': '420', 'AU': '61',
    'NZ': '64', 'BR': '55', 'MX': '52', 'IN': '91', 'JP': '81'
  }) }}
{%- endmacro %}

{% macro phone_to_e164(phone_expr, country_expr) -%}
  {{ return(adapter.dispatch('phone_to_e164', 'personalization')(phone_expr, country_expr)) }}
{%- endmacro %}

{% macro default__phone_to_e164(phone_expr, country_expr) -%}
  {%- set digits = regexp_replace_all("coalesce(" ~ phone_expr ~ ", '')", '[^0-9]', '') -%}
  {%- set is_intl = "(trim(" ~ phone_expr ~ ") like '+%' or " ~ digits ~ " like '00%')" -%}
  {%- set intl = "trim(leading '0' from " ~ digits ~ ")" -%}
  {%- set cc = personalization.country_calling_code(country_expr) -%}
  {%- set national -%}(
    case
      when upper(trim({{ country_expr }})) in ('US', 'CA') and length({{ digits }}) = 11
        and {{ digits }} like '1%' then substr({{ digits }}, 2)
      when upper(trim({{ country_expr }})) = 'IT' then {{ digits }}
      else trim(leading '0' from {{ digits }})
    end)
  {%- endset -%}
  case
    when {{ is_intl }} then
      case
        when length({{ intl }}) between 8 and 15
          and length(replace({{ intl }}, left({{ intl }}, 1), '')) > 0
          then '+' || {{ intl }}
      end
    else
      case
        when ({{ cc }}) is not null
          and length({{ national }}) >= 6
          and length(({{ cc }}) || ({{ national }})) <= 15
          and length(replace({{ national }}, left({{ national }}, 1), '')) > 0
          then '+' || ({{ cc }}) || ({{ national }})
      end
  end
{%- endmacro %}


-- One row per (key_type, key_value) that must never link records: placeholder or role
-- emails, emails and phones shared by many different names, junk phones, default birth
-- dates, cookies logged in as many accounts. Thresholds are dbt vars (docs/identity.md).
{%- set role_local_parts = [
    'test', 'testing', 'info', 'noreply', 'no-reply', 'donotreply', 'admin', 'administrator',
    'contact', 'sales', 'support', 'office', 'hello', 'mail', 'email', 'webmaster',
    'postmaster', 'abuse', 'null', 'none', 'unknown', 'na', 'n/a', 'xxx', 'asdf', 'example',
    'service', 'team', 'kontakt', 'newsletter', 'marketing', 'billing', 'orders', 'shop',
] %}
{%- set placeholder_domains = [
    'example.com', 'example.org', 'example.net', 'test.com', 'test.de', 'localhost',
    'invalid', 'mailinator.com', 'none.com', 'noemail.com', 'nomail.com',
] %}
{%- set default_birth_dates = ['1899-12-31', '1900-01-01', '1901-01-01', '1970-01-01'] %}
{%- set max_names = var('identity_max_names_per_key', 3) %}
{%- set max_customers_per_cookie = var('identity_max_customers_per_cookie', 2) %}

with records as {{ not_materialized_cte() }} (
    select * from {{ ref('int_identity__records') }}
),

cookie_keys as {{ not_materialized_cte() }} (
    select * from {{ ref('int_identity__cookie_keys') }}
),

named as (
    select
        email_normalized,
        phone_e164,
        first_name_canonical || ' ' || last_name_clean as full_name
    from records
    where first_name_canonical is not null and last_name_clean is not null
),

placeholder_emails as (
    select distinct
        'email' as key_type,
        email_normalized as key_value,
        'role_or_placeholder_address' as reason
    from records
    where
        email_normalized is not null
        and (
            email_local_part in ({{ "'" ~ role_local_parts | join("', '") ~ "'" }})
            or split_part(email_normalized, '@', 2) in ({{ "'" ~ placeholder_domains | join("', '") ~ "'" }})
        )
),

shared_emails as (
    select
        'email' as key_type,
        email_normalized as key_value,
        'shared_by_many_names' as reason
    from named
    where email_normalized is not null
    group by email_normalized
    having count(distinct full_name) > {{ max_names }}
),

phone_digits as (
    select distinct
        phone_e164,
        right({{ regexp_replace_all("phone_e164", '[^0-9]', '') }}, 7) as subscriber_digits,
        length({{ regexp_replace_all("phone_e164", '[^0-9]', '') }}) as digit_count
    from records
    where phone_e164 is not null
),

junk_phones as (
    select
        'phone' as key_type,
        phone_e164 as key_value,
        'placeholder_number' as reason
    from phone_digits
    where
        digit_count < 8
        or {{ regexp_matches_fully('subscriber_digits', '0+|1+|2+|3+|4+|5+|6+|7+|8+|9+') }}
        or subscriber_digits in ('1234567', '2345678', '3456789', '7654321', '0123456', '9876543')
),

shared_phones as (
    select
        'phone' as key_type,
        phone_e164 as key_value,
        'shared_by_many_names' as reason
    from named
    where phone_e164 is not null
    group by phone_e164
    having count(distinct full_name) > {{ max_names }}
),

default_birth_dates as (
    select distinct
        'birth_date' as key_type,
        birth_date::string as key_value,
        'default_or_impossible_date' as reason
    from records
    where
        birth_date in ({{ "'" ~ default_birth_dates | join("'::date, '") ~ "'::date" }})
        or birth_date < '1900-01-01'::date
        or birth_date > '{{ var("ds") }}'::date
),

shared_cookies as (
    select
        'cookie' as key_type,
        anonymous_id as key_value,
        'shared_by_many_accounts' as reason
    from cookie_keys
    where customer_id is not null or email_sha256 is not null
    group by anonymous_id
    having
        count(distinct customer_id) > {{ max_customers_per_cookie }}
        or count(distinct email_sha256) > {{ max_customers_per_cookie }}
),

unioned as (
    select * from placeholder_emails
    union all
    select * from shared_emails
    union all
    select * from junk_phones
    union all
    select * from shared_phones
    union all
    select * from default_birth_dates
    union all
    select * from shared_cookies
),

final as (
    -- One reason per value (the first alphabetically) keeps the key unique.
    select key_type, key_value, min(reason) as reason
    from unioned
    group by key_type, key_value
)

select * from final

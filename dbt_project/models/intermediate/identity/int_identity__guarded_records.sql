-- One row per source record, with every junk key (int_identity__junk_values) nulled so no
-- later rule can link through it.
-- Incremental from its inputs (docs/identity.md, "Identity that follows tonight's records"):
-- a night computes only the records stamped since this table was last written, those a junk
-- value guards tonight or guarded last night (a value can become junk or stop being junk
-- without its record changing), and records gone; every other row is kept.
{{ changed_rows_config('record_key', 'source', stamped=true) }}
{%- set since = changed_since() %}
with all_records as {{ not_materialized_cte() }} (
    select * from {{ ref('int_identity__records') }}
),

junk as {{ not_materialized_cte() }} (
    select * from {{ ref('int_identity__junk_values') }}
),
{%- if since is not none %}

scope as (
    select record_key from all_records where changed_at > timestamp '{{ since }}'
    union
    select all_records.record_key from all_records
    inner join junk on junk.key_type = 'email' and all_records.email_normalized = junk.key_value
    union
    select all_records.record_key from all_records
    inner join junk on junk.key_type = 'phone' and all_records.phone_e164 = junk.key_value
    union
    select all_records.record_key from all_records
    inner join junk on junk.key_type = 'birth_date' and all_records.birth_date::string = junk.key_value
    union
    select record_key from {{ this }}
    where has_junk_email or has_junk_phone or has_junk_birth_date
    union
    {{ changed_rows_gone('all_records') }}
),
{%- endif %}

records as (
    select * from all_records
    {%- if since is not none %}
    where exists (select 1 from scope where scope.record_key = all_records.record_key)
    {%- endif %}
),

final as (
    select
        records.record_key,
        records.source,
        records.source_id,
        case when junk_email.key_value is null then records.email_normalized end as email_normalized,
        case when junk_email.key_value is null then records.email_local_part end as email_local_part,
        case when junk_email.key_value is null then records.email_sha256 end as email_sha256,
        records.first_name_clean,
        records.last_name_clean,
        records.first_name_canonical,
        case when junk_phone.key_value is null then records.phone_e164 end as phone_e164,
        records.street_clean,
        records.postcode_clean,
        records.city_clean,
        case when junk_birth_date.key_value is null then records.birth_date end as birth_date,
        records.updated_at,
        junk_email.key_value is not null as has_junk_email,
        junk_phone.key_value is not null as has_junk_phone,
        junk_birth_date.key_value is not null as has_junk_birth_date,
        {{ changed_at_column() }}
    from records
    left join junk as junk_email
        on junk_email.key_type = 'email' and records.email_normalized = junk_email.key_value
    left join junk as junk_phone
        on junk_phone.key_type = 'phone' and records.phone_e164 = junk_phone.key_value
    left join junk as junk_birth_date
        on junk_birth_date.key_type = 'birth_date' and records.birth_date::string = junk_birth_date.key_value
)

-- Written as its changes (changed_rows.sql).
{{ changed_rows('final', 'record_key', scope=('scope' if since is not none else none), stamped=true) }}

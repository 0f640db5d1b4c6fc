-- One row per person record (crm/shop with at least one name): its comparison fields and
-- their fingerprint. Blocking keys and pair comparisons are cached by fingerprint
-- (identity_incremental.sql): a record whose fingerprint is unchanged is not recomputed.
-- Incremental from its input: only guarded records stamped since this table was last
-- written, and records gone, are computed (docs/identity.md, "Identity that follows
-- tonight's records").
{{ changed_rows_config('record_key', 'fingerprint', stamped=true) }}
{%- set since = changed_since() %}
with all_records as {{ not_materialized_cte() }} (
    select * from {{ ref('int_identity__guarded_records') }}
),
{%- if since is not none %}

scope as (
    select record_key from all_records where changed_at > timestamp '{{ since }}'
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

people as (
    select *
    from records
    where
        source in ('crm', 'shop')
        and (first_name_clean is not null or last_name_clean is not null)
),

final as (
    select
        record_key,
        {%- for field in identity_comparison_fields() %}
        {{ field }},
        {%- endfor %}
        {{ identity_record_fingerprint('people') }} as fingerprint,
        {{ changed_at_column() }}
    from people
)

-- Written as its changes (changed_rows.sql).
{{ changed_rows('final', 'record_key', scope=('scope' if since is not none else none), stamped=true) }}

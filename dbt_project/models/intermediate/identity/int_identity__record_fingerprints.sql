-- One row per person record (crm/shop with at least one name): its comparison fields and
-- their fingerprint. Blocking keys and pair comparisons are cached by fingerprint
-- (identity_incremental.sql): a record whose fingerprint is unchanged is not recomputed.
{{ changed_rows_config('record_key', 'fingerprint') }}
with records as (
    select * from {{ ref('int_identity__guarded_records') }}
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
        {{ identity_record_fingerprint('people') }} as fingerprint
    from people
)

-- Written as its changes (changed_rows.sql).
{{ changed_rows('final', 'record_key') }}

-- Every delivered version of every CRM contact, normalised once (an exception to the
-- staging-as-views rule, as stg_shop__orders): stg_crm__contacts picks the latest version
-- of each contact from these rows, so a night normalises only its own delivery instead of
-- every delivery ever loaded (docs/identity.md, "Kept person versions").
-- Incremental on DuckDB (on Spark a table rebuilt whole, keyed_incremental()): a night reads
-- the lake partitions after the newest delivery it holds before `ds` (normally just `ds`;
-- after missed nights every missed day) and appends them; the pre-hook first deletes the
-- rows of those deliveries (and of any later one), so a rerun of `ds` replaces that day's
-- versions and the table always equals a `--full-refresh` of the same `ds`.
{{ delivery_versions_config() }}

with source as (
    select * from {{ lake_relation('crm', 'contacts') }} as contacts
    where {{ lake_ds_window() }}
),

final as (
    select
        cast(contact_id as string) as contact_id,
        {{ person_columns() }},
        cast(birth_date as date) as birth_date,
        nullif(lower(trim(gender)), '') as gender,
        nullif(lower(trim(language)), '') as language,
        cast(created_at as timestamp) as created_at,
        cast(updated_at as timestamp) as updated_at,
        cast(email_opt_in as boolean) as is_opted_in,
        cast(opt_in_at as timestamp) as opted_in_at,
        cast(unsubscribed_at as timestamp) as unsubscribed_at,
        cast(ds as date) as delivered_on,
        cast(_line_number as bigint) as line_number
    from source
    where contact_id is not null
)

select * from final

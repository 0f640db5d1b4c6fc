with source as (
    select * from {{ lake_relation('crm', 'contacts') }} as contacts
    where {{ lake_ds_window() }}
),

renamed as (
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
),

latest as (
    {{ latest_version('renamed', 'contact_id') }}
),

final as (
    select {{ star_except(['line_number']) }} from latest
)

select * from final

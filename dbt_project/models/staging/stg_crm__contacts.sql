with source as (
    select * from {{ lake_relation('crm', 'contacts') }} as contacts
    where {{ lake_ds_window() }}
),

renamed as (
    select
        cast(contact_id as varchar) as contact_id,
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
        nullif(upper(trim(country)), '') as country,
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

-- A later updated_at supersedes; on a tie the later delivery, then the later line, wins.
latest as (
    select *
    from renamed
    qualify row_number() over (
        partition by contact_id
        order by updated_at desc nulls last, delivered_on desc, line_number desc
    ) = 1
),

final as (
    select * exclude (line_number) from latest
)

select * from final

with source as (
    select * from {{ lake_relation('crm', 'erasure_requests') }} as erasure_requests
    where {{ lake_ds_window() }}
),

renamed as (
    select
        {{ clean_email('email') }} as email,
        {{ normalize_email('email') }} as email_normalized,
        {{ email_sha256('email') }} as email_sha256,
        cast(requested_at as timestamp) as requested_at,
        cast(ds as date) as delivered_on
    from source
),

-- One row per person asking: the first request counts (erasure is never undone).
first_request as (
    select {{ star_except(['qualify_keep']) }} from (
        select *,
            (row_number() over (
        partition by email_sha256 order by requested_at nulls last, delivered_on
    ) = 1) as qualify_keep
        from renamed
    where email_sha256 is not null
    ) as qualified
    where qualify_keep
),

final as (
    select * from first_request
)

select * from final

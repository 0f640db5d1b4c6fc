with source as (
    select * from {{ lake_relation('esp', 'suppressions') }} as suppressions
    where {{ lake_ds_window() }}
),

renamed as (
    select
        lower(trim(email_sha256)) as email_sha256,
        cast(esp as string) as esp,
        cast(reason as string) as reason,
        cast(esp_reason as string) as esp_reason,
        {{ dbt.safe_cast("nullif(trim(reported_at), '')", api.Column.translate_type("timestamp")) }}
            as reported_at,
        cast(ds as date) as delivered_on
    from source
    where email_sha256 is not null
),

-- One row per address: the first time any ESP reported it (a suppression is never lifted
-- here; an ESP that lifts one stops reporting it, but the export stays on the safe side).
first_report as (
    select {{ star_except(['qualify_keep']) }} from (
        select *,
            (row_number() over (
        partition by email_sha256
        order by delivered_on, reported_at nulls last, esp, reason
    ) = 1) as qualify_keep
        from renamed
    ) as qualified
    where qualify_keep
),

final as (
    select
        email_sha256,
        esp,
        reason,
        esp_reason,
        reported_at as first_reported_at,
        delivered_on as first_delivered_on
    from first_report
)

select * from final

-- Trigger decisions as the runner published them, up to the end of the run's day.
-- `sending` rows are calls in flight when the runner last published: not yet a decision.
with source as (
    select * from {{ lake_relation('triggers', 'sends') }} as sends
    where {{ lake_ds_window() }}
),

final as (
    select
        cast(trigger as string) as trigger_name,
        cast(dedup_key as string) as dedup_key,
        cast(unified_id as string) as unified_id,
        cast(email_sha256 as string) as email_sha256,
        cast(status as string) as status,
        cast(reason as string) as reason,
        cast(campaign as string) as campaign_id,
        cast(due_at as timestamp) as due_at,
        cast(decided_at as timestamp) as decided_at,
        cast(sent_at as timestamp) as sent_at
    from source
    where status in ('sent', 'suppressed', 'failed')
        and decided_at < date '{{ var("ds") }}' + interval 1 day
)

select * from final

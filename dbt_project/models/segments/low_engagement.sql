-- People with an email address (not erased) who neither opened nor clicked an email in the
-- last D days. Consent is not checked here: the export enforces it for every segment.
with

profiles as (
    select * from {{ ref('customer_profiles') }}
),

events as (
    select * from {{ ref('customer_events') }}
),

email_engagement as (
    select unified_id, max(occurred_at) as last_email_engagement_at
    from events
    where unified_id is not null
      and event_type in ('email_open', 'email_click')
      and occurred_at < {{ segment_window_end() }}
    group by unified_id
),

final as (
    select
        profiles.unified_id,
        cast(email_engagement.last_email_engagement_at as timestamp) as last_email_engagement_at,
        cast({{ dbt.datediff('email_engagement.last_email_engagement_at', segment_window_end(), 'day') }}
             as integer) as days_since_email_engagement
    from profiles
    left join email_engagement on profiles.unified_id = email_engagement.unified_id
    where profiles.email is not null
      and not coalesce(profiles.is_erased, false)
      and (email_engagement.last_email_engagement_at is null
           or email_engagement.last_email_engagement_at
              < {{ segment_window_start(var('low_engagement_days')) }})
)

select * from final

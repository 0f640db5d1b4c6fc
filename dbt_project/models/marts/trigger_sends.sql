-- One row per trigger decision up to the end of `ds`: what was sent, suppressed (and why) or
-- failed. The people keep their id of tonight's identity map; attribution joins on it.
with sends as (
    select * from {{ ref('stg_triggers__sends') }}
),

final as (
    select
        trigger_name as trigger,
        unified_id,
        email_sha256,
        dedup_key,
        status,
        reason,
        campaign_id,
        due_at,
        decided_at,
        sent_at
    from sends
)

select * from final

-- What a person does on the site and in email, from their events: first/last seen, last
-- email open/click, and the device they use most (most events, then most recently used,
-- then alphabetically).
-- Incremental (exception to the intermediate-as-tables rule): a night recomputes only the
-- persons whose events changed (macros/incremental_events.sql).
{{ per_person_event_config() }}

with events as (
    {{ touched_person_events() }}
),

event_times as (
    select
        unified_id,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
        max(occurred_at) filter (where event_type = 'email_open') as last_email_open_at,
        max(occurred_at) filter (where event_type = 'email_click') as last_email_click_at,
        max(delivered_on) as last_delivered_on
    from events
    group by unified_id
),

devices as (
    select unified_id, device, count(*) as n_events, max(occurred_at) as last_used_at
    from events
    where device is not null
    group by unified_id, device
),

main_device as (
    select {{ star_except(['qualify_keep']) }} from (
        select unified_id, device as main_device,
            (row_number() over (
        partition by unified_id order by n_events desc, last_used_at desc, device
    ) = 1) as qualify_keep
        from devices
    ) as qualified
    where qualify_keep
),

final as (
    select
        event_times.unified_id,
        event_times.first_seen_at,
        event_times.last_seen_at,
        event_times.last_email_open_at,
        event_times.last_email_click_at,
        main_device.main_device,
        event_times.last_delivered_on
    from event_times
    left join main_device using (unified_id)
)

select * from final

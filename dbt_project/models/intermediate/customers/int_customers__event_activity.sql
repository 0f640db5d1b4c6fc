-- What a person does on the site and in email, from their events: first/last seen, last
-- email open/click, and the device they use most (most events, then most recently used,
-- then alphabetically). Aggregated from int_customers__device_activity (a few rows per
-- person), not from the events.
-- Incremental (exception to the intermediate-as-tables rule): a night recomputes only the
-- persons whose device rows changed (macros/incremental_events.sql).
{{ per_person_event_config(key='rollup', detail='int_customers__device_activity') }}

with devices as (
    select * from {{ ref('int_customers__device_activity') }}
    {%- if is_incremental() %}
    where unified_id in (select unified_id from {{ touched_relation() }})
    {%- endif %}
),

event_times as (
    select
        unified_id,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        max(last_email_open_at) as last_email_open_at,
        max(last_email_click_at) as last_email_click_at,
        max(last_delivered_on) as last_delivered_on
    from devices
    group by unified_id
),

main_device as (
    select {{ star_except(['qualify_keep']) }} from (
        select unified_id, device as main_device,
            (row_number() over (
        partition by unified_id order by n_events desc, last_seen_at desc, device
    ) = 1) as qualify_keep
        from devices
        where device is not null
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

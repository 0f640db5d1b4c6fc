-- One row per person and device they used (null: events without a device): how many events,
-- first/last seen, last email open/click, and the newest pixel delivery among them.
-- int_customers__event_activity aggregates it per person: its main device needs each
-- device's count and last use, which cannot be added up from a per-person row.
-- Incremental (exception to the intermediate-as-tables rule), by adding: a night adds the
-- new deliveries' events to the rows the person already has (counts add up, first/last
-- combine), and recomputes from all their events only the persons whose old events changed
-- or whose rows already count a reloaded delivery (macros/incremental_events.sql).
{{ per_person_event_config(key='delta') }}

with events as (
    {{ delta_person_events() }}
),

partials as (
    select
        unified_id,
        device,
        count(*) as n_events,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
        max(occurred_at) filter (where event_type = 'email_open') as last_email_open_at,
        max(occurred_at) filter (where event_type = 'email_click') as last_email_click_at,
        max(delivered_on) as last_delivered_on
    from events
    group by unified_id, device
    {{ delta_previous_rows(['unified_id', 'device', 'n_events', 'first_seen_at', 'last_seen_at',
                            'last_email_open_at', 'last_email_click_at', 'last_delivered_on']) }}
),

final as (
    select
        unified_id,
        device,
        cast(sum(n_events) as bigint) as n_events,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        max(last_email_open_at) as last_email_open_at,
        max(last_email_click_at) as last_email_click_at,
        max(last_delivered_on) as last_delivered_on
    from partials
    group by unified_id, device
)

select * from final

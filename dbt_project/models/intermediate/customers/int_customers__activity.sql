-- What a person does on the site and in email: first/last seen, last email open/click, the
-- device they use most, and their favourite category (most units bought in placed orders,
-- else most product views; ties to the alphabetically first category).
with events as (
    select * from {{ ref('customer_events') }}
    where unified_id is not null
),

order_items as (
    select * from {{ ref('order_items') }}
    where unified_id is not null
),

event_times as (
    select
        unified_id,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
        max(occurred_at) filter (where event_type = 'email_open') as last_email_open_at,
        max(occurred_at) filter (where event_type = 'email_click') as last_email_click_at
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

-- Purchased units rank first, product views only break ties and stand in when nothing was bought.
category_signals as (
    select unified_id, category, sum(quantity) as units, 0 as views
    from order_items
    where status = 'placed' and category is not null
    group by unified_id, category
    union all
    select unified_id, category, 0 as units, count(*) as views
    from events
    where event_type = 'product_view' and category is not null
    group by unified_id, category
),

favourite_category as (
    select {{ star_except(['qualify_keep']) }} from (
        select unified_id, category as favourite_category,
            (row_number() over (
        partition by unified_id order by sum(units) desc, sum(views) desc, category
    ) = 1) as qualify_keep
        from category_signals
    group by unified_id, category
    ) as qualified
    where qualify_keep
),

persons as (
    select unified_id from event_times
    union
    select unified_id from order_items
),

final as (
    select
        persons.unified_id,
        event_times.first_seen_at,
        event_times.last_seen_at,
        event_times.last_email_open_at,
        event_times.last_email_click_at,
        main_device.main_device,
        favourite_category.favourite_category
    from persons
    left join event_times using (unified_id)
    left join main_device using (unified_id)
    left join favourite_category using (unified_id)
)

select * from final

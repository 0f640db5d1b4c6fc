-- What a person does on the site and in email: first/last seen, last email open/click, the
-- device they use most, and their favourite category (most units bought in placed orders,
-- else most product views; ties to the alphabetically first category).
-- The event parts come pre-aggregated per person (incremental models), so this table is
-- rebuilt from a few rows per person, never from the events.
-- Incremental (exception to the intermediate-as-tables rule): a person's row depends only on
-- their rows of the three inputs, so a night recomputes only the persons whose fingerprint
-- of those changed and keeps the others' rows (macros/person_fingerprint.sql).
{{ person_fingerprint_config() }}
-- Each input is read twice (every person's fingerprint, then the changed persons' rows),
-- written out at both places rather than as one CTE, which DuckDB would copy whole (4.9M
-- order lines and 2.8M category rows at 1M people).
{%- set order_item_columns -%}
    -- The order-line columns read below: a person's fingerprint follows only these.
    select unified_id, status, category, quantity
    from {{ ref('int_order_items__resolved') }}
    where unified_id is not null
{%- endset %}

with fingerprints as (
    select input_hashes.unified_id, {{ rows_fingerprint('input_hashes.row_hash') }} as input_fingerprint
    from (
        select unified_id, {{ row_hash('all_event_activity', "'events'") }} as row_hash
        from {{ ref('int_customers__event_activity') }} as all_event_activity
        union all
        select unified_id, {{ row_hash('all_category_views', "'views'") }}
        from {{ ref('int_customers__category_views') }} as all_category_views
        union all
        select unified_id, {{ row_hash('all_order_items', "'items'") }}
        from ({{ order_item_columns }}) as all_order_items
    ) as input_hashes
    group by input_hashes.unified_id
),

changed as (
    {{ changed_persons('fingerprints') }}
),

event_activity as (
    select * from {{ ref('int_customers__event_activity') }}
    where unified_id in (select unified_id from changed)
),

category_views as (
    select * from {{ ref('int_customers__category_views') }}
    where unified_id in (select unified_id from changed)
),

order_items as (
    select * from ({{ order_item_columns }}) as all_order_items
    where unified_id in (select unified_id from changed)
),

-- Purchased units rank first, product views only break ties and stand in when nothing was bought.
category_signals as (
    select unified_id, category, sum(quantity) as units, 0 as views
    from order_items
    where status = 'placed' and category is not null
    group by unified_id, category
    union all
    select unified_id, category, 0 as units, views
    from category_views
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
    select unified_id from event_activity
    union
    select unified_id from order_items
),

final as (
    select
        persons.unified_id,
        event_activity.first_seen_at,
        event_activity.last_seen_at,
        event_activity.last_email_open_at,
        event_activity.last_email_click_at,
        event_activity.main_device,
        favourite_category.favourite_category,
        fingerprints.input_fingerprint
    from persons
    inner join fingerprints using (unified_id)
    left join event_activity using (unified_id)
    left join favourite_category using (unified_id)
)

select * from final
{{ gone_persons('fingerprints') }}

-- One row per loaded pixel event with its person and category (int_events__resolved).
-- A view (exception to the marts-as-tables rule): the events are kept incrementally in
-- int_events__resolved; a table here would copy the largest table every night. On Spark it
-- is a table: the serving copy takes tables' files, and scoring and the export read it there.
{{ config(materialized=served_view()) }}

with events as (
    select * from {{ ref('int_events__resolved') }}
),

final as (
    select
        event_id,
        unified_id,
        occurred_at,
        event_type,
        sku,
        category,
        campaign_id,
        variant,
        device,
        delivered_on
    from events
)

select * from final

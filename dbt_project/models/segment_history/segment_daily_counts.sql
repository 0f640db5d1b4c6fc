{#-
    Incremental, keyed by (segment, as_of_date): a rerun of ds replaces that date's rows.
    The first build (or --full-refresh) derives every date from the earliest spell to ds
    out of segment_membership_history, so the counts can always be rebuilt from it.
-#}
{{ config(incremental_strategy='delete+insert', unique_key=['segment', 'as_of_date'],
          on_schema_change='fail') }}


with

history as (
    select * from {{ ref('segment_membership_history') }}
),

dates as (
    {%- if is_incremental() %}
    select {{ segment_as_of_date() }} as as_of_date
    {%- else %}
    select cast(generated as date) as as_of_date
    from generate_series(
        (select coalesce(min(entered_on), {{ segment_as_of_date() }}) from history),
        {{ segment_as_of_date() }},
        interval 1 day
    ) as series(generated)  -- noqa: LT01
    {%- endif %}
),

segments as (
    {{ segment_processed_names('history') }}
),

counts as (
    select
        segments.segment,
        dates.as_of_date,
        count(history.unified_id) filter (
            where history.entered_on <= dates.as_of_date
              and (history.left_on is null or history.left_on > dates.as_of_date)
        ) as size,
        count(history.unified_id) filter (where history.entered_on = dates.as_of_date) as entered,
        count(history.unified_id) filter (where history.left_on = dates.as_of_date) as left_count
    from segments
    cross join dates
    left join history on segments.segment = history.segment
    group by segments.segment, dates.as_of_date
),

final as (
    select
        cast(segment as string) as segment,
        cast(as_of_date as date) as as_of_date,
        cast(size as integer) as size,
        cast(entered as integer) as entered,
        cast(left_count as integer) as "left"
    from counts
)

select * from final

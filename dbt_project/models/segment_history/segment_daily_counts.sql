{#-
    Incremental, keyed by (segment, as_of_date): a rerun of ds replaces that date's rows.
    The first build (or --full-refresh) derives every date from the earliest spell to ds
    out of segment_membership_history, so the counts can always be rebuilt from it.
-#}
{{ config(incremental_strategy=date_replace_strategy(), unique_key=['segment', 'as_of_date'],
          partition_by=(['as_of_date'] if target.type == 'spark' else none),
          on_schema_change='fail') }}


with

history as (
    select * from {{ ref('segment_membership_history') }}
),

dates as (
    {%- if is_incremental() %}
    select {{ segment_as_of_date() }} as as_of_date
    {%- else %}
    {{ date_series("(select coalesce(min(entered_on), " ~ segment_as_of_date() ~ ") from history)",
                   segment_as_of_date()) }}
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
        cast(left_count as integer) as {{ adapter.quote('left') }}
    from counts
)

select * from final

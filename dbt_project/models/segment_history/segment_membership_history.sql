{#-
    Built as a table that carries its previous self forward, not as a dbt incremental model:
    a rerun of ds must be an exact replacement even for a segment that became empty (a
    delete+insert keyed on the output would leave that segment's stale rows behind), and a
    `--full-refresh` of the project must never wipe the membership history.

    For each processed segment (every model tagged `segment`, minus var('segment_history_skip')),
    spells entered on or after ds are dropped and spells closed on or after ds are reopened,
    which rewinds the history to the eve of ds; today's members (after expiry) then close
    the spells of those who left and open spells for those who entered. Unprocessed
    segments are carried over untouched.
-#}
{{ config(materialized='table', pre_hook="{{ keep_previous_self() }}") }}

{%- set previous = previous_self_relation() -%}

with

profiles as (
    select * from {{ ref('customer_profiles') }}
),

segment_members as (
    {{ segment_union_members() }}
),

current_members as (
    {{ segment_apply_expiry('segment_members', 'profiles') }}
),

previous as (
    {%- if previous is not none %}
    select segment, unified_id, entered_on, left_on from {{ previous }}
    {%- else %}
    select
        cast(null as string) as segment,
        cast(null as string) as unified_id,
        cast(null as date) as entered_on,
        cast(null as date) as left_on
    where 1 = 0
    {%- endif %}
),

processed as (
    {{ segment_processed_names('previous') }}
),

untouched as (
    select previous.*
    from previous
    left join processed on previous.segment = processed.segment
    where processed.segment is null
),

rewound as (
    -- The processed segments' history as it stood at the end of the day before ds.
    select
        previous.segment,
        previous.unified_id,
        previous.entered_on,
        case when previous.left_on >= {{ segment_as_of_date() }} then null
             else previous.left_on end as left_on
    from previous
    inner join processed on previous.segment = processed.segment
    where previous.entered_on < {{ segment_as_of_date() }}
),

carried as (
    select
        rewound.segment,
        rewound.unified_id,
        rewound.entered_on,
        case
            when rewound.left_on is not null then rewound.left_on
            when current_members.unified_id is null then {{ segment_as_of_date() }}
        end as left_on
    from rewound
    left join current_members
        on rewound.segment = current_members.segment
        and rewound.unified_id = current_members.unified_id
        and rewound.left_on is null
),

entered as (
    select
        current_members.segment,
        current_members.unified_id,
        {{ segment_as_of_date() }} as entered_on,
        cast(null as date) as left_on
    from current_members
    left join rewound
        on current_members.segment = rewound.segment
        and current_members.unified_id = rewound.unified_id
        and rewound.left_on is null
    where rewound.unified_id is null
),

final as (
    select * from untouched
    union all
    select * from carried
    union all
    select * from entered
)

select
    cast(segment as string) as segment,
    cast(unified_id as string) as unified_id,
    cast(entered_on as date) as entered_on,
    cast(left_on as date) as left_on
from final

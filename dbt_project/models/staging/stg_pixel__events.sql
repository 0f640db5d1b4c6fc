-- Incremental (exception to the staging-as-views rule): the largest, append-only table.
-- At-least-once delivery: an event_id may repeat within a file or a day later. The first
-- occurrence (earliest delivery, then earliest line) is kept. In an incremental run, ids
-- already loaded from earlier deliveries are skipped; the pre-hook drops the rows of the
-- deliveries about to be reloaded, so a rerun of ds replaces that day's rows, also when an
-- event left the delivery (a corrected file); delete+insert on event_id drops a later
-- delivery's repeat of an id the reloaded day now holds (the delete reads only rows
-- delivered after the bound: recent_delete_insert, macros/lake.sql). A full rebuild gives
-- the same table.
-- Events come through two channels with one contract: the pixel's daily file and the
-- real-time intake (docs/triggers.md); the same event_id through both is kept once.
-- `event_key` (the id's 64-bit hash, the last column): the probes of tonight's ids against
-- every loaded one (here and in the uniqueness test) scan integers, not the id strings; a
-- key found is checked against the ids of the deliveries holding it, so a hash collision
-- changes nothing (macros/event_keys.sql). A table built before the key gets the column in
-- place and its rows' keys from the post-hook, and probes the ids until then.
{{ config(
    materialized=keyed_incremental(),
    incremental_strategy='recent_delete_insert',
    unique_key='event_id',
    on_schema_change='append_new_columns',
    pre_hook="{{ event_mart_pre_hook(expired=false) }}",
    post_hook="{{ fill_event_keys() }}"
) }}

{%- set lower_bound = incremental_lower_bound() if is_incremental() else none %}
{%- set keyed = event_keys_complete() if is_incremental() else false %}

-- Both channels share the pixel contract; columns named so the union does not depend on
-- the order the Parquet files hold them in. Written out where it is read (`source`,
-- `later_occurrences`) rather than read twice as one CTE, which DuckDB would copy whole.
{%- set event_columns = ['event_id', 'occurred_at', 'anonymous_id', 'customer_id', 'email_sha256',
                         'event_type', 'sku', 'campaign_id', 'variant', 'url', 'country', 'city',
                         'device', '_line_number', 'ds'] %}
{%- set channels -%}
    select {{ event_columns | join(', ') }}, 1 as channel_rank
    from {{ lake_relation('pixel', 'events') }} as events
    where {{ lake_ds_window() }}
    union all
    select {{ event_columns | join(', ') }}, 2 as channel_rank
    from {{ lake_relation('pixel', 'intake_events') }} as intake_events
    where {{ lake_ds_window() }}
{%- endset %}

with source as (
    {{ channels }}
),

renamed as (
    select
        cast(event_id as string) as event_id,
        cast(occurred_at as timestamp) as occurred_at,
        cast(cast(occurred_at as timestamp) as date) as occurred_on,
        cast(anonymous_id as string) as anonymous_id,
        cast(customer_id as string) as customer_id,
        nullif(lower(trim(email_sha256)), '') as email_sha256,
        lower(trim(event_type)) as event_type,
        cast(sku as string) as sku,
        cast(campaign_id as string) as campaign_id,
        cast(variant as string) as variant,
        url,
        nullif(upper(trim(country)), '') as country,
        {{ clean_text('city') }} as city,
        nullif(lower(trim(device)), '') as device,
        cast(ds as date) as delivered_on,
        channel_rank,
        cast(_line_number as bigint) as line_number,
        {{ event_key('cast(event_id as string)') }} as event_key
    from source
    where event_id is not null
),

-- Later occurrences of an id (a small set: repeats are rare), ranked on the four columns
-- that order them, not on whole rows: a window carries every column it sees through its
-- sort (the 57M events of a 1M-customer full build: 211 CPU s for this model, this way
-- 106, the same rows).
later_occurrences as (
    select event_id, delivered_on, channel_rank, line_number
    from (
        select
            cast(event_id as string) as event_id,
            cast(ds as date) as delivered_on,
            channel_rank,
            cast(_line_number as bigint) as line_number,
            row_number() over (
                partition by cast(event_id as string)
                order by cast(ds as date), channel_rank, cast(_line_number as bigint)
            ) as occurrence
        from ({{ channels }}) as channels
        where event_id is not null
    ) as occurrences
    where occurrence > 1
),

first_occurrence as (
    select * from renamed
    where not exists (
        select 1 from later_occurrences as later
        where later.event_id = renamed.event_id
          and later.delivered_on = renamed.delivered_on
          and later.channel_rank = renamed.channel_rank
          and later.line_number = renamed.line_number
    )
),

{% if is_incremental() %}
-- The ids of tonight's events already loaded from an earlier delivery: the loaded ids are
-- probed against tonight's (a small hash table), rather than every loaded id hashed nightly;
-- by their keys, then by the ids in the deliveries holding a key found (DuckDB reads only
-- their row groups' ids).
{%- if keyed %}
key_found as (
    select delivered_on, event_key from {{ this }}
    where delivered_on <= date '{{ lower_bound }}'
      and event_key in (select first_occurrence.event_key from first_occurrence)
),

-- Materialized: else DuckDB probes every loaded id with tonight's first (1M people: the
-- statement 5.0 s instead of 1.5; 3.0 with the ids probed without the keys).
loaded_candidates as materialized (
    select event_id from {{ this }}
    where delivered_on in (select key_found.delivered_on from key_found)
      and event_key in (select key_found.event_key from key_found)
),
{%- endif %}

already_loaded as (
    {%- if keyed %}
    select event_id from loaded_candidates
    where event_id in (select first_occurrence.event_id from first_occurrence)
    {%- else %}
    select event_id from {{ this }}
    where delivered_on <= date '{{ lower_bound }}'
      and event_id in (select first_occurrence.event_id from first_occurrence)
    {%- endif %}
),
{% endif %}

final as (
    select {{ star_except(['channel_rank', 'line_number']) }}
    from first_occurrence
    {% if is_incremental() %}
    where event_id not in (select event_id from already_loaded)
    {% endif %}
)

select * from final

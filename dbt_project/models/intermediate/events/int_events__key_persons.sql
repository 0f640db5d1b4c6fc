-- One row per key pair (customer_id, anonymous_id) seen on pixel events: the person its
-- events belong to (the logged-in shop account's, else the cookie's), and the run (ds) in
-- which that person last changed. int_events__resolved re-maps only the events of key pairs
-- changed since its last run, instead of joining every event to the identity assignment
-- (int_identity__id_assignment, what identity_map publishes) nightly.
-- Incremental (exception to the intermediate-as-tables rule): it remembers the previous
-- person of every key pair, which is how a night knows what identity changed. Each night
-- re-checks every known pair (a few per person, cheap) and adds the pairs of new deliveries;
-- only new or changed pairs are written.
{{ config(
    materialized=keyed_incremental(),
    incremental_strategy='delete+insert',
    unique_key='person_key',
    on_schema_change='fail'
) }}

{%- set lower_bound = incremental_lower_bound('first_delivered_on') if is_incremental() else none %}

with events as (
    select * from {{ ref('stg_pixel__events') }}
    {% if is_incremental() -%}
    where delivered_on > date '{{ lower_bound }}'
    {%- endif %}
),

id_assignment as (
    select * from {{ ref('int_identity__id_assignment') }}
),

new_pairs as (
    select
        {{ event_person_key('customer_id', 'anonymous_id') }} as person_key,
        any_value(customer_id) as customer_id,
        any_value(anonymous_id) as anonymous_id,
        min(delivered_on) as first_delivered_on
    from events
    group by 1
),

{% if is_incremental() %}
known_pairs as (
    select * from {{ this }}
),

pairs as (
    select
        coalesce(known_pairs.person_key, new_pairs.person_key) as person_key,
        coalesce(known_pairs.customer_id, new_pairs.customer_id) as customer_id,
        coalesce(known_pairs.anonymous_id, new_pairs.anonymous_id) as anonymous_id,
        coalesce(known_pairs.first_delivered_on, new_pairs.first_delivered_on)
            as first_delivered_on
    from known_pairs
    full join new_pairs on known_pairs.person_key = new_pairs.person_key
),
{% else %}
pairs as (
    select * from new_pairs
),
{% endif %}

mapped as (
    select
        pairs.*,
        coalesce(accounts.unified_id, cookies.unified_id) as unified_id
    from pairs
    left join id_assignment as accounts
        on accounts.source = 'shop'
        and pairs.customer_id = accounts.source_id
    left join id_assignment as cookies
        on cookies.source = 'pixel'
        and pairs.anonymous_id = cookies.source_id
),

final as (
    select
        mapped.person_key,
        mapped.customer_id,
        mapped.anonymous_id,
        mapped.unified_id,
        mapped.first_delivered_on,
        {% if is_incremental() -%}
        case when known_pairs.person_key is null
                  or known_pairs.unified_id is distinct from mapped.unified_id
            then date '{{ var("ds") }}' else known_pairs.remapped_on end as remapped_on,
        case when known_pairs.unified_id is distinct from mapped.unified_id
            then known_pairs.unified_id else known_pairs.previous_unified_id end
            as previous_unified_id
        {%- else -%}
        date '{{ var("ds") }}' as remapped_on,
        cast(null as string) as previous_unified_id
        {%- endif %}
    from mapped
    {% if is_incremental() -%}
    left join known_pairs on mapped.person_key = known_pairs.person_key
    -- Unchanged pairs are not rewritten.
    where known_pairs.person_key is null
       or known_pairs.unified_id is distinct from mapped.unified_id
    {%- endif %}
)

select * from final

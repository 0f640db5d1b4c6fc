-- One row per (person record, blocking rule, block key), with the block's size. Person
-- records are crm/shop records with at least one name; their keys come from the cache
-- int_identity__record_blocking_keys (rules and their reasons there), for the records'
-- current fingerprints.
with records as (
    select * from {{ ref('int_identity__record_fingerprints') }}
),

cached_keys as (
    select * from {{ ref('int_identity__record_blocking_keys') }}
    where cache_version = {{ identity_cache_version() }}
),

components as (
    select * from {{ ref('int_identity__deterministic_components') }}
),

current_keys as (
    select
        records.record_key,
        components.component_id,
        cached_keys.blocking_rule,
        cached_keys.block_key
    from records
    inner join cached_keys
        on records.record_key = cached_keys.record_key and records.fingerprint = cached_keys.fingerprint
    inner join components on records.record_key = components.record_key
),

final as (
    select
        *,
        count(*) over (partition by blocking_rule, block_key) as block_size
    from current_keys
)

select * from final

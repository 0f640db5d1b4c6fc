-- One row per (person record fingerprint, blocking rule, block key): the cache of blocking
-- keys. Incremental (an exception to the folder's tables): a night computes the keys of new
-- and changed records only; rows of fingerprints no longer current are ignored downstream
-- (int_identity__blocking_keys) and dropped by a full refresh. The rules:
-- identity_blocking_key_ctes (macros/identity_blocking.sql).
-- Stamped (changed_at, changed_rows.sql): a fingerprint row not written after the newest
-- stamp of this version's rows was there when this cache last ran, so it is cached; only the
-- rows written since are looked up (without stamps of this version, e.g. before they existed
-- or after a cache version bump, every record is). The column is added in place.
{{ config(materialized='incremental', on_schema_change='append_new_columns') }}
{%- set since = newest_stamp(this, 'cache_version = ' ~ identity_cache_version()) if is_incremental() else none %}

with records as (
    select * from {{ ref('int_identity__record_fingerprints') }}
    {%- if since is not none %}
    where changed_at > timestamp '{{ since }}'
    {%- endif %}
),

-- Materialized (read three times below), as is `people`.
new_records as {{ materialized_cte() }} (
    select records.*
    from records
    {%- if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as cached
        where
            cached.record_key = records.record_key
            and cached.fingerprint = records.fingerprint
            and cached.cache_version = {{ identity_cache_version() }}
    )
    {%- endif %}
),

{{ identity_blocking_key_ctes('new_records') }},

final as (
    select
        record_key,
        fingerprint,
        blocking_rule,
        block_key,
        {{ identity_cache_version() }} as cache_version,
        cast('{{ var("ds") }}' as date) as computed_on,
        {{ changed_at_column() }}
    from keys
)

select * from final

-- Every source record in staging maps to exactly one unified_id (rows returned = failures).
-- Pixel records are the cookies of int_identity__cookie_keys, the folded aggregate of every
-- loaded event (equal to its full rebuild: tests/test_incremental_marts.py), not a distinct
-- over all events: that scan was the test's whole cost (every night, 31 days of events).
with expected as (
    select 'crm' as source, contact_id::string as source_id from {{ ref('stg_crm__contacts') }}
    union
    select 'shop', customer_id::string from {{ ref('stg_shop__customers') }}
    union
    select 'guest', person_source_id from {{ ref('int_orders__person_keys') }}
    where person_source = 'guest'
    union
    -- distinct first: 2.1M cookie-key rows at 1M people (31 days) hold 0.8M cookies
    select distinct 'pixel', anonymous_id from {{ ref('int_identity__cookie_keys') }}
),

-- Exactly one map row, and it holds an id (counts, not a distinct count of ids: the same
-- verdict at half the CPU).
mapped as (
    select source, source_id, count(*) as rows_in_map, count(unified_id) as rows_with_id
    from {{ ref('identity_map') }}
    group by source, source_id
),

final as (
    select
        expected.source,
        expected.source_id,
        coalesce(mapped.rows_in_map, 0) as rows_in_map,
        coalesce(mapped.rows_with_id, 0) as rows_with_id
    from expected
    left join mapped on expected.source = mapped.source and expected.source_id = mapped.source_id
    where coalesce(mapped.rows_in_map, 0) <> 1 or coalesce(mapped.rows_with_id, 0) <> 1
)

select * from final

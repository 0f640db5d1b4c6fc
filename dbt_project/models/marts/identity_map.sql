-- One row per source record (crm contact, shop account, pixel cookie, guest-checkout email):
-- the person it belongs to. Built by the int_identity__* chain; see docs/identity.md.
-- A view (like customer_profiles): a table here would copy every record's row every night
-- (≈ 1 s at 1M people), and the ids then cannot be published apart from the table they come
-- from. On Spark a table (served_view()).
{{ config(materialized=served_view()) }}
with assignment as (
    select * from {{ ref('int_identity__id_assignment') }}
),

final as (
    select
        source::string as source,
        source_id::string as source_id,
        unified_id::string as unified_id,
        match_rule::string as match_rule,
        match_score::double as match_score
    from assignment
)

select * from final

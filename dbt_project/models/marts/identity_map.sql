-- One row per source record (crm contact, shop account, pixel cookie, guest-checkout email):
-- the person it belongs to. Built by the int_identity__* chain; see docs/identity.md.
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

-- Every erasure request with the number of persons whose records carry its address, and
-- what the night does with it (docs/privacy.md, "Erasure"):
--   erase            the address is one person's (or nobody's): that person is erased
--   held_for_review  the records of more than `erasure_max_persons_per_request` persons carry
--                    it (a role or shared address such as info@...: identity resolution never
--                    links on those), so the request does not say which of them asked. No one
--                    is erased until an operator confirms the request
--                    (`personalization erasure-reviews --confirm`, var
--                    erasure_confirmed_email_sha256); meanwhile the address itself is
--                    suppressed in every export, deleted at the ESPs and left out of every
--                    golden record.
{%- set max_persons = var('erasure_max_persons_per_request', 1) | int %}
{%- set confirmed = var('erasure_confirmed_email_sha256', []) %}
with erasure_requests as (
    select * from {{ ref('stg_crm__erasure_requests') }}
),

carried as (
    select
        erasure_requests.email_sha256,
        count(distinct records.unified_id) as persons
    from erasure_requests
    inner join {{ ref('int_customers__source_records') }} as records
        on erasure_requests.email_sha256 = records.email_sha256
    group by erasure_requests.email_sha256
),

counted as (
    select
        erasure_requests.email_sha256,
        erasure_requests.requested_at,
        erasure_requests.delivered_on,
        coalesce(carried.persons, 0) as persons,
        {% if confirmed -%}
        erasure_requests.email_sha256 in ({{ "'" ~ confirmed | join("', '") ~ "'" }})
        {%- else -%}
        false
        {%- endif %} as is_confirmed
    from erasure_requests
    left join carried on erasure_requests.email_sha256 = carried.email_sha256
),

final as (
    select
        email_sha256,
        requested_at,
        delivered_on,
        persons,
        is_confirmed,
        case
            when persons <= {{ max_persons }} or is_confirmed then 'erase'
            else 'held_for_review'
        end as status
    from counted
)

select * from final

-- Source data, not a bug in our models: orders whose shop account the warehouse does not hold
-- and that carry no valid email of their own (quarantined_orders). They are kept there with a
-- reason and never block the night; this warns with their count, so the night's build report
-- (build_marts status `warn`, details.warnings) says how many orders reached no person.
{{ config(severity='warn') }}

select order_id, customer_id, reason
from {{ ref('quarantined_orders') }}

-- One row per random pair of person records (node_a < node_b) from which u is estimated
-- (int_identity__u_probabilities). Records fall into pseudo-random slots (a hash of the
-- record key); the pairs within a slot are the sample. The number of slots is a power of
-- two chosen for about min(var identity_u_sample_pairs, n * var identity_u_max_partners / 2)
-- pairs, so a record keeps its partners from night to night (the sample changes only where
-- records come and go, and the cached comparisons stay valid): when the population grows
-- past a power of two the slots split and the new sample is a subset of the old one.
{%- set sample_pairs = var('identity_u_sample_pairs', 1000000) %}
{%- set max_partners = var('identity_u_max_partners', 20) %}

with records as (
    select record_key from {{ ref('int_identity__record_fingerprints') }}
),

population as (
    select count(*) as record_count from records
),

slot_counts as (
    select
        cast(pow(2, greatest(0, ceil(log(2,
            greatest(1.0, record_count * (record_count - 1) / 2.0)
            / greatest(1.0, least({{ sample_pairs }}, record_count * {{ max_partners }} / 2.0))
        )))) as bigint) as slot_count
    from population
),

slotted as (
    select
        records.record_key,
        {{ identity_hash_bucket('records.record_key', 'slot_counts.slot_count') }} as slot
    from records
    cross join slot_counts
),

final as (
    select
        left_side.record_key as node_a,
        right_side.record_key as node_b
    from slotted as left_side
    inner join slotted as right_side
        on left_side.slot = right_side.slot and left_side.record_key < right_side.record_key
)

select * from final
{%- if not identity_reestimate() %}
-- The stored identity model is kept tonight (int_identity__model_schedule): nothing to estimate from.
where false
{%- endif %}

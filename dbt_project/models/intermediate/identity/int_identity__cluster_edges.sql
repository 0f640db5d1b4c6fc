-- One row per edge the clustering reads: deterministic links and accepted fuzzy matches
-- with their weight (identity_cluster_edges). Kept until the next night, whose
-- int_identity__cluster_region compares its own edges with these to find what changed;
-- built after it (depends_on below), so it reads last night's rows.
-- depends_on: {{ ref('int_identity__cluster_region') }}
with final as (
    {{ identity_cluster_edges() }}
)

select * from final

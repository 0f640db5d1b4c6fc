-- One row per edge the clustering reads: deterministic links and accepted fuzzy matches
-- with their weight (identity_cluster_edges). Kept until the next night, whose
-- int_identity__cluster_region compares its own edges with these to find what changed.
-- Written after the clusters (depends_on below): a night whose clusters failed keeps last
-- night's edges, so the next night still sees tonight's changes (an edge is the only trace
-- of a cookie's login into an account). The ids depend on it, so +identity_map builds it.
-- written_at (this run's start) tells the next night whether these edges are as old as the
-- clusters (identity_stored_edges_state).
-- depends_on: {{ ref('int_identity__clusters') }}
with final as (
    select edges.*, {{ run_start() }} as written_at
    from ({{ identity_cluster_edges() }}) as edges
)

select * from final

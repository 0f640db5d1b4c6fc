{#-
    Clusters that hold two records contradicting each other: from different deterministic
    components, not linked directly by a fuzzy match, and either born on clearly different
    dates (more than two characters apart, not a day/month swap) or with names that share
    nothing (neither name close in either orientation). Such a cluster was chained together
    through third records (a shop account without birth date matching two namesakes).

    Args:
        assignment: relation with record_key, component_id, cluster_id.
        records: int_identity__guarded_records.
        direct_edges: relation with node_a < node_b, the accepted fuzzy pairs.
        max_cluster_size: larger clusters are not checked (the size guard splits them).
    Returns: a SELECT of distinct cluster_id.
-#}
{% macro identity_cluster_conflicts(assignment, records, direct_edges, max_cluster_size) %}
    select distinct left_side.cluster_id
    from (
        select *, count(*) over (partition by cluster_id) as cluster_size from {{ assignment }}
    ) as left_side
    inner join {{ assignment }} as right_side
        on left_side.cluster_id = right_side.cluster_id
        and left_side.component_id < right_side.component_id
    inner join {{ records }} as a on left_side.record_key = a.record_key
    inner join {{ records }} as b on right_side.record_key = b.record_key
    left join {{ direct_edges }} as direct
        on direct.node_a = least(a.record_key, b.record_key)
        and direct.node_b = greatest(a.record_key, b.record_key)
    where
        left_side.cluster_size <= {{ max_cluster_size }}
        and a.source in ('crm', 'shop')
        and b.source in ('crm', 'shop')
        and direct.node_a is null
        and (
            (
                a.birth_date <> b.birth_date
                and not (month(a.birth_date) = day(b.birth_date) and day(a.birth_date) = month(b.birth_date))
                and {{ identity_edit_distance('cast(a.birth_date as varchar(10))', 'cast(b.birth_date as varchar(10))') }} > 2
            )
            or (
                {{ identity_name_level('a.first_name_canonical', 'b.first_name_canonical') }} = 0
                and {{ identity_name_level('a.last_name_clean', 'b.last_name_clean') }} = 0
                and {{ identity_name_level('a.first_name_canonical', 'b.last_name_clean') }} <= 0
                and {{ identity_name_level('a.last_name_clean', 'b.first_name_canonical') }} <= 0
            )
        )
{% endmacro %}

{#-
    Connected components over an undirected edge list, as one DuckDB recursive CTE.

    Semi-naive min-label propagation: every node starts with its own key as label; each pass
    only looks at the nodes whose label changed in the previous pass (the working table) and
    pushes their label to neighbours that hold a larger one. `USING KEY (node)` keeps one row
    per node (the newest label), so the state never grows and the recursion stops as soon as
    a pass changes nothing. Passes = longest shortest path in a component; each pass only
    touches changed nodes, so a 5,000-record chain converges in a few seconds and a 1M-node
    random graph in about one second on 2 cores.

    Args:
        nodes: a relation or CTE name with a column `node` (every node, isolated ones too).
        edges: a relation or CTE name with columns `node_a`, `node_b`.
    Returns: a SELECT of (node, component_id), component_id = the smallest node key.
-#}
{% macro identity_connected_components(nodes, edges) %}
    with recursive cc_edges as (
        select node_a, node_b from {{ edges }}
        union all
        select node_b as node_a, node_a as node_b from {{ edges }}
    ),

    cc(node, label) using key (node) as (
        select node, node as label from {{ nodes }}
        union
        select cc_edges.node_b as node, min(cc.label) as label
        from cc
        inner join cc_edges on cc.node = cc_edges.node_a
        inner join recurring.cc as current_label on cc_edges.node_b = current_label.node
        group by cc_edges.node_b, current_label.label
        having min(cc.label) < current_label.label
    )

    select node, label as component_id from cc
{% endmacro %}

"""Skus as dense integer numbers in sku order, for the recommendation stages and kept views.

The per-person stages sort, join and group tens of millions of (person, product) rows a
night at 1M persons (each recomputed person's views, ≈ 65 at 1M), and the kept views hold
≈ 22M of them: on 4-byte numbers instead of strings the step takes ≈ 5 CPU s (3 s) less
at 1M (docs/performance.md, "Skus as numbers in the recommendations"). The numbers follow
the skus' string order, so ordering by number breaks ties as ordering by sku does, and a
list of numbers maps back to skus with `list_select` on the skus listed by number
(`{t}_skus`: `sku, sid`, sid = 1..n).

A night numbers every sku it may read: the kept numbering's, the catalogue's, every order
line's and the views it reads. A sku new tonight shifts the numbers of those after it, so
the kept views are translated to tonight's numbers (one `list_select` per person: ≈ 0.3 s
at 1M) before anything reads them; a night without new skus translates nothing.
"""

from __future__ import annotations

import duckdb

# Skus every night may read besides its views: the catalogue and every order line.
_ALWAYS = """
select sku from products where sku is not null
union
select sku from order_items where sku is not null
"""


def number_skus(con: duckdb.DuckDBPyConnection, t: str, view_skus: list[str],
                kept_skus_sql: str | None = None) -> bool:
    """Create `{t}_skus` (`sku, sid`): the skus of the catalogue, of every order line, of the
    queries `view_skus` (each selecting a `sku` column) and of the kept numbering
    (`kept_skus_sql`, `sku, sid`), numbered 1..n in sku order. Returns whether the kept
    numbers differ from tonight's (the kept views need `translate_kept`)."""
    sources = [_ALWAYS, *(f"select sku from ({q}) where sku is not null" for q in view_skus)]
    if kept_skus_sql:
        sources.append(f"select sku from ({kept_skus_sql})")
    con.execute(f"""
        create or replace temp table {t}_skus as
        select sku, (row_number() over (order by sku))::integer as sid
        from ({" union ".join(sources)})""")
    if not kept_skus_sql:
        return False
    return con.execute(f"""
        select count(*) > 0 from ({kept_skus_sql}) as k
        left join {t}_skus as n on k.sku = n.sku
        where n.sid is distinct from k.sid""").fetchone()[0]


def translate_kept(con: duckdb.DuckDBPyConnection, t: str, table: str, kept_skus_sql: str,
                   column: str = "sku_ids") -> None:
    """Rewrite the sku numbers of `table.column` (in the kept numbering) to tonight's."""
    con.execute(f"""
        create or replace temp table {table} as
        select * replace (list_select((
            select list(n.sid order by k.sid)
            from ({kept_skus_sql}) as k
            inner join {t}_skus as n on k.sku = n.sku), {column}) as {column})
        from {table}""")


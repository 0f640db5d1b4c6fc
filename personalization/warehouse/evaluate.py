"""Score identity resolution against the generator's ground truth: pairwise precision/recall.

A pair is two records (crm, shop or pixel) of the same true person (truth) or with the same
unified_id (prediction). Pair counts come from cluster sizes, never from listing pairs:
sum(n * (n - 1) / 2) over true persons, over unified_ids, and over their intersections
(the true positives). That keeps a million records to a few group-bys in DuckDB.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import duckdb
from rich.table import Table

from personalization.config import Settings, dbt_var
from personalization.exceptions import WarehouseError
from personalization.observability import log_event, timed
from personalization.privacy.encryption import connect_warehouse
from personalization.warehouse.misses import explain_misses

logger = logging.getLogger(__name__)

EVALUATED_SOURCES = ("crm", "shop", "pixel")

# Scopes: `all` = every crm/shop/pixel record; `profiles` = crm and shop only; `linkable` =
# crm, shop and the cookies that carry any identifying key (a login, an email hash or an
# order id). A cookie that never logged in, clicked an email or checked out shares nothing
# with its person, so `linkable` is the fair bar for the matcher and `all` the bar for the
# data set.
_JOINED_SQL = """
create or replace temp table identity_eval as
with truth as (
    select source::varchar as source, source_id::varchar as source_id, person_id::varchar as person_id
    from read_parquet($truth_path)
    where source in ('crm', 'shop', 'pixel')
),
linkable_cookies as ({linkable_cookies})
select
    truth.source,
    truth.source_id,
    truth.person_id,
    identity_map.unified_id,
    truth.source <> 'pixel' or linkable_cookies.anonymous_id is not null as is_linkable
from truth
inner join identity_map
    on truth.source = identity_map.source and truth.source_id = identity_map.source_id
left join linkable_cookies
    on truth.source = 'pixel' and truth.source_id = linkable_cookies.anonymous_id
"""

_LINKABLE_COOKIES_SQL = """
    select distinct anonymous_id::varchar as anonymous_id
    from stg_pixel__events
    where customer_id is not null or email_sha256 is not null or url like '%order=%'
"""

_PAIR_COUNTS_SQL = """
with scoped as (select * from identity_eval where {where}),
true_sizes as (select count(*)::hugeint as n from scoped group by person_id),
predicted_sizes as (select count(*)::hugeint as n from scoped group by unified_id),
overlap_sizes as (select count(*)::hugeint as n from scoped group by person_id, unified_id)
select
    (select count(*) from scoped) as records_evaluated,
    (select count(distinct person_id) from scoped) as true_persons,
    (select count(distinct unified_id) from scoped) as predicted_persons,
    (select coalesce(sum(n * (n - 1) / 2), 0) from true_sizes)::bigint as true_pairs,
    (select coalesce(sum(n * (n - 1) / 2), 0) from predicted_sizes)::bigint as predicted_pairs,
    (select coalesce(sum(n * (n - 1) / 2), 0) from overlap_sizes)::bigint as true_positive_pairs
"""

SCOPES = {"all": "true", "linkable": "is_linkable", "profiles": "source in ('crm', 'shop')"}

# Pair counts per source pair (crm-shop, shop-shop, crm-pixel, ...) from per-group source
# counts: n_s * n_t pairs between two sources of one group, n_s (n_s - 1) / 2 within one.
_SOURCE_PAIR_SQL = """
with grouped as (
    select {key} as group_key, source, count(*)::hugeint as n
    from identity_eval
    group by all
),
paired as (
    select a.source as source_a, b.source as source_b,
        case when a.source = b.source then a.n * (a.n - 1) / 2 else a.n * b.n end as pairs
    from grouped a join grouped b on a.group_key = b.group_key and a.source <= b.source
)
select source_a || '-' || source_b as source_pair, sum(pairs)::bigint as pairs
from paired group by all
"""

_LARGEST_CLUSTERS_SQL = """
select unified_id, count(*) as records, count(distinct person_id) as true_persons,
    count(*) filter (where source = 'crm') as crm, count(*) filter (where source = 'shop') as shop,
    count(*) filter (where source = 'pixel') as pixel
from identity_eval
group by unified_id
order by records desc, unified_id
limit $limit
"""

_RULES_SQL = """
select match_rule, count(*) as records
from identity_map
group by match_rule
order by records desc
"""


def match_threshold(settings: Settings) -> float:
    """The build's `identity_match_threshold` (a var of dbt_project.yml)."""
    return float(dbt_var(settings.project_dir, "identity_match_threshold"))


def pair_metrics(true_pairs: int, predicted_pairs: int, true_positive_pairs: int) -> dict[str, float]:
    """Precision, recall and F1 from pair counts (1.0 when there is nothing to get wrong)."""
    precision = true_positive_pairs / predicted_pairs if predicted_pairs else 1.0
    recall = true_positive_pairs / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def evaluate(truth_path: Path | str, settings: Settings, largest: int = 10,
             misses: bool = False) -> dict[str, Any]:
    """Compare `identity_map` in the warehouse with the ground truth written by `generate`.

    Args:
        truth_path: Parquet file with columns `source, source_id, person_id` (source in crm,
            shop, pixel, order; orders are not in identity_map and are ignored).
        settings: where the warehouse lives.
        largest: how many of the largest predicted persons to list.
        misses: also explain the missed pairs (`misses.explain_misses`, in `misses`).

    Returns:
        A dict with `precision`, `recall`, `f1` (pairwise), the pair counts and
        `true_persons` vs `predicted_persons` over all evaluated records; the same per scope
        in `scopes` (`all`, `linkable`: cookies with no identifying key left out,
        `profiles`: crm and shop only); `truth_records`, `mapped_records` and
        `records_by_rule` (identity_map rows per match_rule); `by_source_pair` (pair counts,
        precision, recall, F1 per source pair such as `crm-shop`) and `largest_clusters`
        (the largest unified_ids with their true persons and records per source).

    Raises:
        WarehouseError: the truth file or the identity_map table is missing.
    """
    truth_path = Path(truth_path)
    if not truth_path.exists():
        raise WarehouseError(f"ground-truth file not found: {truth_path}")
    if not Path(settings.warehouse_path).exists():
        raise WarehouseError(f"warehouse not found at {settings.warehouse_path}: build the marts first")
    with timed() as t:
        try:
            with connect_warehouse(settings, read_only=True) as con:
                tables = {r[0] for r in con.execute(
                    "select table_name from information_schema.tables").fetchall()}
                if "identity_map" not in tables:
                    raise WarehouseError(f"identity_map not found in {settings.warehouse_path}")
                linkable = (_LINKABLE_COOKIES_SQL if "stg_pixel__events" in tables
                            else "select null::varchar as anonymous_id where false")
                con.execute(_JOINED_SQL.format(linkable_cookies=linkable),
                            {"truth_path": str(truth_path)})
                scopes = {}
                for scope, where in SCOPES.items():
                    cursor = con.execute(_PAIR_COUNTS_SQL.format(where=where))
                    row = cursor.fetchone()
                    counts = dict(zip([d[0] for d in cursor.description], row, strict=True))
                    counts.update(pair_metrics(counts["true_pairs"], counts["predicted_pairs"],
                                               counts["true_positive_pairs"]))
                    scopes[scope] = counts
                truth_records = con.execute(
                    "select count(*) from read_parquet($p) where source in ('crm', 'shop', 'pixel')",
                    {"p": str(truth_path)}).fetchone()[0]
                mapped_records = con.execute("select count(*) from identity_map").fetchone()[0]
                rules = dict(con.execute(_RULES_SQL).fetchall())
                counted = {name: dict(con.execute(_SOURCE_PAIR_SQL.format(key=key)).fetchall())
                           for name, key in (("true", "person_id"), ("predicted", "unified_id"),
                                             ("overlap", "person_id || '|' || unified_id"))}
                by_source_pair = {
                    pair: {"true_pairs": counted["true"].get(pair, 0),
                           "predicted_pairs": counted["predicted"].get(pair, 0),
                           "true_positive_pairs": counted["overlap"].get(pair, 0),
                           **pair_metrics(counted["true"].get(pair, 0), counted["predicted"].get(pair, 0),
                                          counted["overlap"].get(pair, 0))}
                    for pair in sorted(set(counted["true"]) | set(counted["predicted"]))}
                cursor = con.execute(_LARGEST_CLUSTERS_SQL, {"limit": largest})
                names = [d[0] for d in cursor.description]
                largest_clusters = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
                explained = (explain_misses(con, match_threshold(settings), settings.project_dir)
                             if misses and "int_identity__scored_pairs" in tables else None)
        except duckdb.Error as e:
            raise WarehouseError(f"could not evaluate identity against {truth_path}: {e}") from e
    result: dict[str, Any] = {**scopes["all"], "scopes": scopes, "truth_records": truth_records,
                              "mapped_records": mapped_records, "records_by_rule": rules,
                              "by_source_pair": by_source_pair, "largest_clusters": largest_clusters,
                              "seconds": t["seconds"]}
    if explained is not None:
        result["misses"] = explained
    log_event(logger, "identity_evaluated", **{
        f"{scope}_{k}": round(counts[k], 4) for scope, counts in scopes.items()
        for k in ("precision", "recall", "f1")})
    return result


def format_report(result: dict[str, Any]) -> Table:
    """A rich table of the evaluation: one column per scope, the scores first, then counts."""
    scopes = result.get("scopes") or {"all": result}
    table = Table("metric", *scopes, title="Identity resolution vs ground truth (pairwise)")
    for key in ("precision", "recall", "f1"):
        table.add_row(key, *(f"{s[key]:.4f}" for s in scopes.values()))
    for key in ("true_persons", "predicted_persons", "records_evaluated", "true_pairs",
                "predicted_pairs", "true_positive_pairs"):
        table.add_row(key.replace("_", " "), *(f"{s[key]:,}" for s in scopes.values()))
    blank = [""] * (len(scopes) - 1)
    for key in ("truth_records", "mapped_records"):
        if key in result:
            table.add_row(key.replace("_", " "), f"{result[key]:,}", *blank)
    for rule, count in result.get("records_by_rule", {}).items():
        table.add_row(f"records matched by {rule}", f"{count:,}", *blank)
    return table


def format_details(result: dict[str, Any]) -> list[Table]:
    """Rich tables: precision/recall/F1 per source pair, and the largest predicted persons."""
    pairs = Table("source pair", "precision", "recall", "f1", "true pairs", "predicted pairs",
                  title="Per source pair")
    for pair, m in result.get("by_source_pair", {}).items():
        pairs.add_row(pair, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}",
                      f"{m['true_pairs']:,}", f"{m['predicted_pairs']:,}")
    clusters = Table("unified_id", "records", "true persons", "crm", "shop", "pixel",
                     title="Largest predicted persons")
    for c in result.get("largest_clusters", []):
        clusters.add_row(c["unified_id"], *(f"{c[k]:,}" for k in
                                            ("records", "true_persons", "crm", "shop", "pixel")))
    return [pairs, clusters]

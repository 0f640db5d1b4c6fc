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

from personalization.config import Settings
from personalization.exceptions import WarehouseError
from personalization.observability import log_event, timed
from personalization.privacy.encryption import connect_warehouse

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

_RULES_SQL = """
select match_rule, count(*) as records
from identity_map
group by match_rule
order by records desc
"""


def pair_metrics(true_pairs: int, predicted_pairs: int, true_positive_pairs: int) -> dict[str, float]:
    """Precision, recall and F1 from pair counts (1.0 when there is nothing to get wrong)."""
    precision = true_positive_pairs / predicted_pairs if predicted_pairs else 1.0
    recall = true_positive_pairs / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def evaluate(truth_path: Path | str, settings: Settings) -> dict[str, Any]:
    """Compare `identity_map` in the warehouse with the ground truth written by `generate`.

    Args:
        truth_path: Parquet file with columns `source, source_id, person_id` (source in crm,
            shop, pixel, order; orders are not in identity_map and are ignored).
        settings: where the warehouse lives.

    Returns:
        A dict with `precision`, `recall`, `f1` (pairwise), the pair counts and
        `true_persons` vs `predicted_persons` over all evaluated records; the same per scope
        in `scopes` (`all`, `linkable`: cookies with no identifying key left out,
        `profiles`: crm and shop only); `truth_records`, `mapped_records` and
        `records_by_rule` (identity_map rows per match_rule).

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
        except duckdb.Error as e:
            raise WarehouseError(f"could not evaluate identity against {truth_path}: {e}") from e
    result: dict[str, Any] = {**scopes["all"], "scopes": scopes, "truth_records": truth_records,
                              "mapped_records": mapped_records, "records_by_rule": rules,
                              "seconds": t["seconds"]}
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

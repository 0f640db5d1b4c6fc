"""A/B results from the pixel data in the lake: opens, clicks, conversions per variant.

Definitions (per campaign + variant, people = distinct persons):
- opens: people with an `email_open`; clicks: people with an `email_click`;
- conversions: clickers with a `purchase` within 7 days after one of their clicks;
- rates divide by the variant's recipients when the campaign is a segment of the export
  (non-holdout rows with that variant), else by its openers (the pixel sees no sends);
- lift and a two-sided two-proportion z-test compare each variant with the control (the first);
- holdout baseline: share of the export's holdout members (never mailed) who bought anything
  in the campaign window (first campaign event .. last + 7 days), next to the same share of
  the treated members.

A person is the email hash: taken from the event, else from the shop account
(lake `shop/customers`), else from another event of the same cookie. Events are deduplicated
by `event_id` (delivery is at-least-once).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from personalization.config import Settings
from personalization.observability import log_event, timed
from personalization.portal.store import Export, segment_file

logger = logging.getLogger(__name__)

CONVERSION_DAYS = 7


def normal_cdf(x: float) -> float:
    """Standard normal CDF via the complementary error function (no scipy)."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def two_proportion_z_test(x1: int, n1: int, x2: int, n2: int) -> tuple[float | None, float | None]:
    """Pooled two-proportion z-test of x2/n2 vs x1/n1: (z, two-sided p), None if undefined."""
    if n1 <= 0 or n2 <= 0:
        return None, None
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return None, None
    z = (x2 / n2 - x1 / n1) / se
    return z, 2 * (1 - normal_cdf(abs(z)))


def lift(rate: float | None, control: float | None) -> float | None:
    """Relative change vs the control rate (0.25 = +25 %), None without a control rate."""
    if rate is None or not control:
        return None
    return (rate - control) / control


def _rate(x: int, n: int) -> float | None:
    return x / n if n else None


@dataclass
class VariantResult:
    variant: str
    base: int  # denominator: recipients or openers
    opens: int
    clicks: int
    conversions: int
    is_control: bool = False
    click_lift: float | None = None
    click_p: float | None = None
    conversion_lift: float | None = None
    conversion_p: float | None = None

    @property
    def open_rate(self) -> float | None:
        return _rate(self.opens, self.base)

    @property
    def click_rate(self) -> float | None:
        return _rate(self.clicks, self.base)

    @property
    def conversion_rate(self) -> float | None:
        return _rate(self.conversions, self.base)


@dataclass
class Baseline:
    group: str  # holdout | treated
    members: int
    buyers: int

    @property
    def purchase_rate(self) -> float | None:
        return _rate(self.buyers, self.members)


@dataclass
class CampaignResult:
    campaign_id: str
    segment: str | None
    basis: str  # recipients | openers
    first_event: datetime
    last_event: datetime
    variants: list[VariantResult] = field(default_factory=list)
    baselines: list[Baseline] = field(default_factory=list)


def _glob(path: Path) -> list[str]:
    return sorted(str(p) for p in path.glob("ds=*/part-0.parquet"))


def _files_sql(paths: list[str]) -> str:
    # DDL cannot take prepared parameters: quote the paths as SQL literals instead.
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def _create_views(con: duckdb.DuckDBPyConnection, settings: Settings) -> bool:
    events = _glob(settings.lake_dir / "raw" / "pixel" / "events")
    if not events:
        return False
    con.execute(
        "CREATE TEMP VIEW events AS SELECT event_id, CAST(occurred_at AS TIMESTAMP) AS occurred_at,"
        " anonymous_id, customer_id, email_sha256, event_type, campaign_id, variant"
        f" FROM read_parquet({_files_sql(events)}, hive_partitioning = false, union_by_name = true)"
        " QUALIFY event_id IS NULL"
        " OR row_number() OVER (PARTITION BY event_id ORDER BY occurred_at) = 1")
    customers = _glob(settings.lake_dir / "raw" / "shop" / "customers")
    if customers:
        con.execute(
            "CREATE TEMP VIEW customers AS SELECT customer_id, sha256(lower(trim(email))) AS h"
            f" FROM read_parquet({_files_sql(customers)}, hive_partitioning = false,"
            " union_by_name = true)"
            " WHERE nullif(trim(email), '') IS NOT NULL"
            " QUALIFY row_number() OVER (PARTITION BY customer_id"
            "                            ORDER BY updated_at DESC NULLS LAST) = 1")
    else:
        con.execute("CREATE TEMP VIEW customers AS"
                    " SELECT NULL::VARCHAR AS customer_id, NULL::VARCHAR AS h WHERE false")
    # min(): deterministic when a shared device saw two people.
    con.execute("""
        CREATE TEMP TABLE resolved AS
        WITH direct AS (
            SELECT e.*, coalesce(e.email_sha256, c.h) AS h
            FROM events e LEFT JOIN customers c ON c.customer_id = e.customer_id),
        cookie AS (
            SELECT anonymous_id, min(h) AS h FROM direct
            WHERE anonymous_id IS NOT NULL AND h IS NOT NULL GROUP BY anonymous_id)
        SELECT d.occurred_at, d.event_type, d.campaign_id, d.variant,
               coalesce(d.h, k.h) AS person
        FROM direct d LEFT JOIN cookie k ON k.anonymous_id = d.anonymous_id""")
    return True


_VARIANTS_SQL = f"""
    WITH camp AS (
        SELECT campaign_id, variant, event_type, person, occurred_at FROM resolved
        WHERE campaign_id IS NOT NULL AND variant IS NOT NULL AND person IS NOT NULL
          AND event_type IN ('email_open', 'email_click')),
    clicks AS (SELECT * FROM camp WHERE event_type = 'email_click'),
    conversions AS (
        SELECT c.campaign_id, c.variant, count(DISTINCT c.person) AS conversions
        FROM clicks c JOIN resolved p
          ON p.person = c.person AND p.event_type = 'purchase'
         AND p.occurred_at >= c.occurred_at
         AND p.occurred_at <= c.occurred_at + INTERVAL {CONVERSION_DAYS} DAY
        GROUP BY ALL),
    counts AS (
        SELECT campaign_id, variant,
               count(DISTINCT person) FILTER (WHERE event_type = 'email_open') AS opens,
               count(DISTINCT person) FILTER (WHERE event_type = 'email_click') AS clicks,
               min(occurred_at) AS first_event, max(occurred_at) AS last_event
        FROM camp GROUP BY ALL)
    SELECT n.campaign_id, n.variant, n.opens, n.clicks, coalesce(v.conversions, 0),
           n.first_event, n.last_event
    FROM counts n LEFT JOIN conversions v USING (campaign_id, variant)
    ORDER BY n.campaign_id, n.variant
"""


def _load_members(con: duckdb.DuckDBPyConnection, export: Export) -> None:
    """Table `members(segment, unified_id, h, variant, is_holdout)` from the export files."""
    selects, params = [], []
    for seg in export.segments:
        path = segment_file(export, str(seg.get("name")))
        if path is not None:
            selects.append("SELECT ? AS segment, unified_id, sha256(lower(trim(email))) AS h,"
                           " CAST(variant AS VARCHAR) AS variant,"
                           " coalesce(CAST(is_holdout AS BOOLEAN), false) AS is_holdout"
                           " FROM read_parquet(?)")
            params += [seg.get("name"), str(path)]
    if not selects:
        selects = ["SELECT NULL::VARCHAR AS segment, NULL::VARCHAR AS unified_id,"
                   " NULL::VARCHAR AS h, NULL::VARCHAR AS variant, NULL::BOOLEAN AS is_holdout"
                   " WHERE false"]
    con.execute("CREATE TEMP TABLE members AS " + " UNION ALL ".join(selects), params)


def _baselines(con, segment: str | None, start: datetime, end: datetime) -> list[Baseline]:
    scope = "segment = ?" if segment else "true"
    rows = con.execute(f"""
        WITH people AS (
            SELECT h, bool_or(is_holdout) AS is_holdout FROM members
            WHERE {scope} AND h IS NOT NULL GROUP BY h),
        buyers AS (
            SELECT DISTINCT person AS h FROM resolved
            WHERE event_type = 'purchase' AND occurred_at BETWEEN ? AND ?)
        SELECT CASE WHEN is_holdout THEN 'holdout' ELSE 'treated' END AS grp, count(*),
               count(b.h)
        FROM people p LEFT JOIN buyers b USING (h) GROUP BY ALL ORDER BY grp""",
        ([segment] if segment else []) + [start, end]).fetchall()
    return [Baseline(group=g, members=int(m), buyers=int(b)) for g, m, b in rows]


def campaign_results(settings: Settings, export: Export | None) -> list[CampaignResult]:
    """A/B results of every campaign with variants in the pixel data (newest first).

    Args:
        settings: product settings (reads `<lake>/raw/pixel/events` and `shop/customers`).
        export: the export whose members give recipients and the holdout (None: no baseline).
    """
    con = duckdb.connect()  # in memory: the warehouse file is never opened
    try:
        with timed() as t:
            if not _create_views(con, settings):
                return []
            if export is not None:
                _load_members(con, export)
            by_campaign: dict[str, CampaignResult] = {}
            segments = {str(s.get("campaign_id") or s.get("name")): s
                        for s in (export.segments if export else [])}
            for cid, var, opens, clicks, conv, first, last in con.execute(_VARIANTS_SQL).fetchall():
                seg = segments.get(cid)
                res = by_campaign.setdefault(cid, CampaignResult(
                    campaign_id=cid, segment=seg.get("name") if seg else None,
                    basis="recipients" if seg else "openers", first_event=first, last_event=last))
                res.first_event, res.last_event = min(res.first_event, first), max(res.last_event, last)
                res.variants.append(VariantResult(variant=var, base=opens, opens=opens,
                                                  clicks=clicks, conversions=conv))
            for res in by_campaign.values():
                _finish(con, res, export, segments.get(res.campaign_id))
        log_event(logger, "portal_ab_results", campaigns=len(by_campaign), seconds=t["seconds"])
        return sorted(by_campaign.values(), key=lambda r: r.first_event, reverse=True)
    finally:
        con.close()


def _finish(con, res: CampaignResult, export: Export | None, seg: dict | None) -> None:
    if seg is not None:
        recipients = dict(con.execute(
            "SELECT variant, count(*) FROM members WHERE segment = ? AND NOT is_holdout"
            " GROUP BY variant", [seg.get("name")]).fetchall())
        for v in res.variants:
            v.base = int(recipients.get(v.variant, 0))
        order = [str(x) for x in (seg.get("variants") or [])]
        res.variants.sort(key=lambda v: (order.index(v.variant) if v.variant in order
                                         else len(order), v.variant))
    control = res.variants[0]
    control.is_control = True
    for v in res.variants[1:]:
        v.click_lift = lift(v.click_rate, control.click_rate)
        v.click_p = two_proportion_z_test(control.clicks, control.base, v.clicks, v.base)[1]
        v.conversion_lift = lift(v.conversion_rate, control.conversion_rate)
        v.conversion_p = two_proportion_z_test(control.conversions, control.base,
                                               v.conversions, v.base)[1]
    if export is not None:
        res.baselines = _baselines(con, res.segment, res.first_event,
                                   res.last_event + timedelta(days=CONVERSION_DAYS))

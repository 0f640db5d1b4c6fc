"""A/B results from the warehouse: opens, clicks, conversions per variant.

Definitions (per campaign + variant, people = distinct persons):
- opens: people with an `email_open`; clicks: people with an `email_click`;
- conversions: clickers with a `purchase` within 7 days after one of their clicks;
- rates divide by the variant's recipients when the campaign is a segment of the export
  (non-holdout rows with that variant), else by its openers (the pixel sees no sends);
- each rate has a 95 % Wilson interval; each variant is compared with the control (the
  first) by lift, a 95 % interval of the difference and a two-sided two-proportion z-test;
- verdict per metric: a winner when p < 0.05, else "no difference yet" with the sample size
  per arm that would detect the difference seen (80 % power, 5 % two-sided; a 10 % relative
  lift when no difference is seen at all);
- holdout baseline: share of the holdout (never mailed) who bought anything in the campaign
  window (first campaign event .. last + 7 days), next to the same share of the treated
  people, with the lift vs the holdout. A segment's campaign uses that segment's members; a
  campaign without a segment has no known audience, so it is compared store-wide, with the
  export that was in force when it started (the newest before its first event), never a
  later one;
- `since` / `until` keep only campaign events on those dates (inclusive).

A person is a `unified_id`: the export publishes the `campaign_responses` mart (per campaign,
variant, person and day: opened, clicked, converted; built by dbt from the deduplicated,
identity-resolved events) and the purchase events since the first response
(export/campaigns.py); this module only counts and compares. It never opens the warehouse.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import duckdb

from personalization.config import Settings
from personalization.observability import log_event, timed
from personalization.portal import store
from personalization.portal.security import safe_child
from personalization.portal.store import Export, segment_file

logger = logging.getLogger(__name__)

CONVERSION_DAYS = 7
Z_95 = 1.959964  # two-sided 5 %
Z_POWER_80 = 0.841621
# Effect to size for when no difference is seen at all: a 10 % relative lift.
MIN_RELATIVE_LIFT = 0.10
SIGNIFICANCE = 0.05


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


def wilson_interval(x: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """95 % Wilson score interval of x/n (good for small n and rates near 0), None if n = 0."""
    if n <= 0:
        return None
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(x1: int, n1: int, x2: int, n2: int,
                        z: float = Z_95) -> tuple[float, float] | None:
    """95 % (Wald) interval of x2/n2 − x1/n1, None if a group is empty."""
    if n1 <= 0 or n2 <= 0:
        return None
    p1, p2 = x1 / n1, x2 / n2
    half = z * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return p2 - p1 - half, p2 - p1 + half


def sample_size_per_arm(p1: float, p2: float) -> int | None:
    """People per arm for an 80 %-power, 5 % two-sided test of p1 vs p2 (None if p1 == p2)."""
    if p1 == p2:
        return None
    pooled = (p1 + p2) / 2
    need = (Z_95 * math.sqrt(2 * pooled * (1 - pooled))
            + Z_POWER_80 * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / (p1 - p2) ** 2
    return math.ceil(need)


def verdict(name: str, control_name: str, x1: int, n1: int, x2: int, n2: int,
            p_value: float | None) -> str:
    """Plain words for one comparison: who wins, or how many more people per arm are needed."""
    if n1 <= 0 or n2 <= 0:
        return "not enough data yet"
    p1, p2 = x1 / n1, x2 / n2
    if p_value is not None and p_value < SIGNIFICANCE:
        return f"{name if p2 > p1 else control_name} wins"
    if p1 == p2:
        target = min(p1 * (1 + MIN_RELATIVE_LIFT), 1.0) if p1 > 0 else None
        need = sample_size_per_arm(p1, target) if target else None
        if need is None:
            return "no difference yet (no events in either arm)"
        return (f"no difference yet, need ~{max(need - min(n1, n2), 0):,} more per arm "
                f"to see a {MIN_RELATIVE_LIFT:.0%} lift")
    need = sample_size_per_arm(p1, p2) or 0
    more = max(need - min(n1, n2), 0)
    return f"no difference yet, need ~{more:,} more per arm"


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
    click_diff_ci: tuple[float, float] | None = None
    click_verdict: str | None = None
    conversion_lift: float | None = None
    conversion_p: float | None = None
    conversion_diff_ci: tuple[float, float] | None = None
    conversion_verdict: str | None = None

    @property
    def open_rate(self) -> float | None:
        return _rate(self.opens, self.base)

    @property
    def click_rate(self) -> float | None:
        return _rate(self.clicks, self.base)

    @property
    def conversion_rate(self) -> float | None:
        return _rate(self.conversions, self.base)

    @property
    def click_ci(self) -> tuple[float, float] | None:
        return wilson_interval(self.clicks, self.base)

    @property
    def conversion_ci(self) -> tuple[float, float] | None:
        return wilson_interval(self.conversions, self.base)


@dataclass
class Baseline:
    group: str  # holdout | treated | variant <v>
    members: int
    buyers: int
    lift: float | None = None  # vs the holdout
    p: float | None = None
    diff_ci: tuple[float, float] | None = None

    @property
    def purchase_rate(self) -> float | None:
        return _rate(self.buyers, self.members)

    @property
    def ci(self) -> tuple[float, float] | None:
        return wilson_interval(self.buyers, self.members)


@dataclass
class CampaignResult:
    campaign_id: str
    segment: str | None
    basis: str  # recipients | openers
    first_event: datetime
    last_event: datetime
    variants: list[VariantResult] = field(default_factory=list)
    baselines: list[Baseline] = field(default_factory=list)
    baseline_scope: str = ""  # what the baseline compares, in words


def _load_results(con: duckdb.DuckDBPyConnection, export: Export) -> bool:
    """Temp tables `responses` and `purchases` from the export's campaign files (False when
    the export has none: published before the campaign_responses mart existed)."""
    entries = export.manifest.get("campaigns") or {}
    paths = {}
    for name in ("responses", "purchases"):
        entry = (entries.get(name) or {}).get("file") or {}
        path = safe_child(export.path, str(entry.get("path", ""))) if entry else None
        if path is None or not path.exists():
            return False
        paths[name] = str(path)
    con.execute("CREATE TEMP TABLE responses AS SELECT * FROM read_parquet(?)",
                [paths["responses"]])
    con.execute("CREATE TEMP TABLE purchases AS SELECT * FROM read_parquet(?)",
                [paths["purchases"]])
    return True


_VARIANTS_SQL = """
    SELECT campaign_id, variant,
           count(DISTINCT unified_id) FILTER (WHERE has_opened) AS opens,
           count(DISTINCT unified_id) FILTER (WHERE has_clicked) AS clicks,
           count(DISTINCT unified_id) FILTER (WHERE has_converted) AS conversions,
           min(first_event_at) AS first_event, max(last_event_at) AS last_event
    FROM responses
    GROUP BY campaign_id, variant
    ORDER BY campaign_id, variant
"""


def _load_members(con: duckdb.DuckDBPyConnection, export: Export) -> None:
    """Rows of `export` in table `members(ds, segment, unified_id, variant, is_holdout)`."""
    con.execute("CREATE TEMP TABLE IF NOT EXISTS members (ds VARCHAR, segment VARCHAR,"
                " unified_id VARCHAR, variant VARCHAR, is_holdout BOOLEAN)")
    if con.execute("SELECT count(*) FROM members WHERE ds = ?", [export.ds]).fetchone()[0]:
        return
    for seg in export.segments:
        path = segment_file(export, str(seg.get("name")))
        if path is not None:
            con.execute("INSERT INTO members SELECT ?, ?, CAST(unified_id AS VARCHAR),"
                        " CAST(variant AS VARCHAR),"
                        " coalesce(CAST(is_holdout AS BOOLEAN), false) FROM read_parquet(?)",
                        [export.ds, seg.get("name"), str(path)])


def _compare_with_holdout(groups: list[Baseline]) -> list[Baseline]:
    holdout = next((b for b in groups if b.group == "holdout"), None)
    for b in groups:
        if holdout is not None and b is not holdout and holdout.members:
            b.lift = lift(b.purchase_rate, holdout.purchase_rate)
            b.p = two_proportion_z_test(holdout.buyers, holdout.members, b.buyers, b.members)[1]
            b.diff_ci = difference_interval(holdout.buyers, holdout.members, b.buyers, b.members)
    return groups


def _baselines(con, ds: str, segment: str | None, start: datetime,
               end: datetime) -> list[Baseline]:
    """Holdout vs treated (and per variant, for a segment) purchase shares in [start, end]."""
    scope = "segment = ?" if segment else "true"
    by_variant = ("CASE WHEN bool_or(is_holdout) THEN NULL ELSE any_value(variant) END"
                  if segment else "NULL")
    rows = con.execute(f"""
        WITH people AS (
            SELECT unified_id, bool_or(is_holdout) AS is_holdout, {by_variant} AS variant
            FROM members
            WHERE ds = ? AND {scope} AND unified_id IS NOT NULL GROUP BY unified_id),
        buyers AS (
            SELECT DISTINCT unified_id FROM purchases WHERE purchased_at BETWEEN ? AND ?)
        SELECT CASE WHEN is_holdout THEN 'holdout' ELSE 'treated' END AS grp, variant,
               grouping(variant) = 1 AS whole_group, count(*), count(b.unified_id)
        FROM people p LEFT JOIN buyers b USING (unified_id)
        GROUP BY GROUPING SETS ((grp), (grp, variant))
        ORDER BY grp, whole_group DESC, variant""",
        [ds] + ([segment] if segment else []) + [start, end]).fetchall()
    groups = []
    for grp, variant, whole_group, members, buyers in rows:
        if whole_group:
            groups.append(Baseline(group=grp, members=int(members), buyers=int(buyers)))
        elif grp == "treated" and variant is not None:
            groups.append(Baseline(group=f"variant {variant}", members=int(members),
                                   buyers=int(buyers)))
    return _compare_with_holdout(groups)


def export_in_force(settings: Settings, when: date) -> Export | None:
    """The export a campaign starting on `when` was sent from: the newest published before
    that day (else the oldest one)."""
    dates = store.export_dates(settings)  # newest first
    before = [d for d in dates if d < when.isoformat()]
    ds = before[0] if before else (dates[-1] if dates else None)
    return store.load_export(settings, ds) if ds else None


def campaign_results(settings: Settings, export: Export | None, since: date | None = None,
                     until: date | None = None) -> list[CampaignResult]:
    """A/B results of every campaign with variants in the export's responses (newest first).

    Args:
        settings: product settings (older exports, for a campaign without a segment).
        export: the export whose campaign files (the warehouse's responses and purchases) are
            counted and whose members give a segment campaign's recipients, variants and
            holdout (None: no results).
        since: keep campaign events on or after this day.
        until: keep campaign events on or before this day.
    """
    if export is None:
        return []
    con = duckdb.connect()  # in memory: the warehouse file is never opened
    try:
        with timed() as t:
            if not _load_results(con, export):
                return []
            _keep_campaign_events(con, since, until)
            _load_members(con, export)
            by_campaign: dict[str, CampaignResult] = {}
            segments = {str(s.get("campaign_id") or s.get("name")): s
                        for s in export.segments}
            for cid, var, opens, clicks, conv, first, last in con.execute(_VARIANTS_SQL).fetchall():
                seg = segments.get(cid)
                res = by_campaign.setdefault(cid, CampaignResult(
                    campaign_id=cid, segment=seg.get("name") if seg else None,
                    basis="recipients" if seg else "openers", first_event=first, last_event=last))
                res.first_event, res.last_event = min(res.first_event, first), max(res.last_event, last)
                res.variants.append(VariantResult(variant=var, base=opens, opens=opens,
                                                  clicks=clicks, conversions=conv))
            for res in by_campaign.values():
                _finish(con, settings, res, export, segments.get(res.campaign_id))
        log_event(logger, "portal_ab_results", campaigns=len(by_campaign), seconds=t["seconds"])
        return sorted(by_campaign.values(), key=lambda r: r.first_event, reverse=True)
    finally:
        con.close()


def _keep_campaign_events(con: duckdb.DuckDBPyConnection, since: date | None,
                          until: date | None) -> None:
    """Drop campaign responses outside [since, until]; purchases stay (they are the outcome)."""
    if since is not None:
        con.execute("DELETE FROM responses WHERE activity_on < ?", [since])
    if until is not None:
        con.execute("DELETE FROM responses WHERE activity_on > ?", [until])


def _compare(res: CampaignResult) -> None:
    control = res.variants[0]
    control.is_control = True
    for v in res.variants[1:]:
        v.click_lift = lift(v.click_rate, control.click_rate)
        v.click_p = two_proportion_z_test(control.clicks, control.base, v.clicks, v.base)[1]
        v.click_diff_ci = difference_interval(control.clicks, control.base, v.clicks, v.base)
        v.click_verdict = verdict(v.variant, control.variant, control.clicks, control.base,
                                  v.clicks, v.base, v.click_p)
        v.conversion_lift = lift(v.conversion_rate, control.conversion_rate)
        v.conversion_p = two_proportion_z_test(control.conversions, control.base,
                                               v.conversions, v.base)[1]
        v.conversion_diff_ci = difference_interval(control.conversions, control.base,
                                                   v.conversions, v.base)
        v.conversion_verdict = verdict(v.variant, control.variant, control.conversions,
                                       control.base, v.conversions, v.base, v.conversion_p)


def _finish(con, settings: Settings, res: CampaignResult, export: Export | None,
            seg: dict | None) -> None:
    if seg is not None:
        recipients = dict(con.execute(
            "SELECT variant, count(*) FROM members WHERE ds = ? AND segment = ? AND NOT is_holdout"
            " GROUP BY variant", [export.ds, seg.get("name")]).fetchall())
        for v in res.variants:
            v.base = int(recipients.get(v.variant, 0))
        order = [str(x) for x in (seg.get("variants") or [])]
        res.variants.sort(key=lambda v: (order.index(v.variant) if v.variant in order
                                         else len(order), v.variant))
    _compare(res)
    window_end = res.last_event + timedelta(days=CONVERSION_DAYS)
    if seg is not None:
        res.baselines = _baselines(con, export.ds, str(seg.get("name")), res.first_event, window_end)
        res.baseline_scope = f"members of segment {seg.get('name')} in the export of {export.ds}"
        return
    # No segment: the audience is unknown; compare store-wide, as of when the campaign started.
    in_force = export_in_force(settings, res.first_event.date())
    if in_force is not None:
        _load_members(con, in_force)
        res.baselines = _baselines(con, in_force.ds, None, res.first_event, window_end)
        res.baseline_scope = (f"everyone exported on {in_force.ds} (store-wide: this campaign is "
                              f"not a segment, so its audience is unknown)")

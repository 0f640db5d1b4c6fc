"""Why true duplicate pairs were missed: what they share beyond their names, and what stopped them.

`evaluate` says how many true pairs identity resolution found; this says where the others went,
so a change to blocking, levels or guards can be judged by what it could win and what it risks:

- missed linkable pairs split into those between two parts of a person that both hold a CRM or
  shop record (a profile split in two, with the cookies riding on each part) and those of a
  cookie attached to none of its person's records;
- each missed CRM/shop pair by the strongest evidence its two records share beyond their names
  (birth date, postcode, street, phone, mailbox name, city — equal or nearly so — or nothing)
  and by what stopped it (never a candidate, scored below the threshold, a guard, or matched but
  kept apart by the cluster guards);
- every pair the model was confident about (probability at or above the threshold) that a guard
  rejected, true and false: what each guard costs in recall and saves in precision;
- the model's calibration: the scored pairs that pass the guards, by band of predicted match
  probability, true and false: how far the probabilities can be trusted, and what another
  threshold would win and cost (`identity_match_threshold` was chosen from this table);
- the learned m of every comparison level beside the share of that level among the scored
  pairs the truth calls one person: where EM learned something the data does not say (this
  table found the u that EM held fixed, docs/identity.md "EM that learns u too").

Needs the `identity_eval` temp table of `evaluate` on the same connection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import jinja2
from rich.table import Table

from personalization.exceptions import WarehouseError

_MISSED_SQL = """
create or replace temp table identity_missed_pairs as
with records as (
    select eval.person_id, eval.unified_id, records.record_key,
        records.first_name_canonical as first_name, records.last_name_clean as last_name,
        records.birth_date, records.street_clean as street, records.postcode_clean as postcode,
        records.city_clean as city, records.phone_e164 as phone, records.email_local_part as mailbox
    from identity_eval as eval
    inner join int_identity__guarded_records as records
        on records.record_key = eval.source || ':' || eval.source_id
    where eval.source in ('crm', 'shop')
),
missed as (
    select a.record_key as node_a, b.record_key as node_b,
        case
            when a.birth_date is not null and b.birth_date is not null
                and damerau_levenshtein(a.birth_date::varchar, b.birth_date::varchar) <= 2
                then '1 birth date'
            when levenshtein(a.postcode, b.postcode) <= 1 then '2 postcode'
            when jaro_winkler_similarity(a.street, b.street) >= 0.9 then '3 street'
            when levenshtein(a.phone, b.phone) <= 1 then '4 phone'
            when jaro_winkler_similarity(a.mailbox, b.mailbox) >= 0.9 then '5 mailbox name'
            when jaro_winkler_similarity(a.city, b.city) >= 0.9 then '6 city'
            else '7 names only'
        end as evidence,
        case
            when a.first_name = b.first_name and a.last_name = b.last_name then 'equal'
            when jaro_winkler_similarity(a.first_name, b.first_name) >= 0.85
                and jaro_winkler_similarity(a.last_name, b.last_name) >= 0.85 then 'similar'
            else 'differ or missing'
        end as names
    from records as a
    inner join records as b
        on a.person_id = b.person_id and a.record_key < b.record_key and a.unified_id <> b.unified_id
)
select missed.*,
    case
        when candidates.node_a is null then '1 not compared'
        when scored.match_probability < {threshold} then '2 below threshold'
        when not scored.is_match then '3 guard: ' || {guard_reason}
        else '4 cluster guard'
    end as stopped_by
from missed
left join int_identity__candidate_pairs as candidates
    on candidates.node_a = missed.node_a and candidates.node_b = missed.node_b
left join int_identity__scored_pairs as scored
    on scored.node_a = missed.node_a and scored.node_b = missed.node_b
"""

_GUARD_MACROS = Path("dbt_project") / "macros" / "identity_match_weights.sql"


def guard_failure_sql(project_dir: Path) -> str:
    """The SQL of the dbt macro `identity_match_guard_failure()`: which guard a scored pair fails
    (null when it passes), rendered from the project itself so the guard is defined once."""
    path = Path(project_dir) / _GUARD_MACROS
    try:
        macros = jinja2.Environment(extensions=["jinja2.ext.do"]).from_string(
            path.read_text(encoding="utf-8")).module
        return str(macros.identity_match_guard_failure()).strip()
    except (OSError, jinja2.TemplateError, AttributeError) as e:
        raise WarehouseError(f"cannot read the identity guard from {path}: {e}") from e


_LINKABLE_SPLIT_SQL = """
with parts as (
    select person_id, unified_id, count(*) as records,
        count(*) filter (where source <> 'pixel') as profile_records
    from identity_eval where is_linkable group by all
)
select
    coalesce(sum(a.records * b.records) filter (where a.profile_records > 0 and b.profile_records > 0), 0)
        as pairs_between_profile_parts,
    coalesce(sum(a.profile_records * b.profile_records)
        filter (where a.profile_records > 0 and b.profile_records > 0), 0) as profile_pairs,
    coalesce(sum(a.records * b.records) filter (where a.profile_records = 0 or b.profile_records = 0), 0)
        as pairs_of_unattached_cookies
from parts as a
inner join parts as b on a.person_id = b.person_id and a.unified_id < b.unified_id
"""

# The scored pairs whose two records are CRM/shop records of the evaluation, each with
# whether the truth calls them one person: what the guard and calibration tables count.
_JUDGED_CTE = """truth as (
    select source || ':' || source_id as record_key, person_id
    from identity_eval where source in ('crm', 'shop')
),
judged as (
    select scored.*, a.person_id = b.person_id as is_same_person
    from int_identity__scored_pairs as scored
    inner join truth as a on a.record_key = scored.node_a
    inner join truth as b on b.record_key = scored.node_b
)"""

_GUARDED_SQL = """
with {judged}
select 'guard: ' || {guard_reason} as guard,
    count(*) filter (where is_same_person) as true_pairs,
    count(*) filter (where not is_same_person) as false_pairs
from judged
where match_probability >= {threshold} and not is_match
group by all
order by guard
"""


_BANDS = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999)

_CALIBRATION_SQL = """
with {judged}
select {band} as band_from,
    count(*) filter (where is_same_person) as true_pairs,
    count(*) filter (where not is_same_person) as false_pairs,
    avg(match_probability) as mean_probability
from judged
where {guard_reason} is null
group by all
order by band_from
"""


# Per comparison level: the model's m and the level's share among the true pairs where both
# records have the field (level >= 0), the truth's m over the pairs that were scored.
_M_AGAINST_TRUTH_SQL = """
with {judged},
true_levels as (
    {true_levels}
),
counted as (
    select comparison, comparison_level, count(*) as true_pairs
    from true_levels where comparison_level >= 0 group by all
)
select model.comparison, model.comparison_level, model.m_probability,
    coalesce(counted.true_pairs, 0) as true_pairs,
    coalesce(counted.true_pairs, 0) / nullif(sum(coalesce(counted.true_pairs, 0))
        over (partition by model.comparison), 0) as true_share
from int_identity__m_probabilities as model
left join counted
    on counted.comparison = model.comparison and counted.comparison_level = model.comparison_level
order by model.comparison, model.comparison_level desc
"""


def _m_against_truth(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    comparisons = [c for (c,) in con.execute(
        "select distinct comparison from int_identity__m_probabilities order by 1").fetchall()]
    true_levels = "\n    union all\n    ".join(
        f"select '{c}' as comparison, {c}_level as comparison_level from judged where is_same_person"
        for c in comparisons)
    columns = ("comparison", "comparison_level", "m_probability", "true_pairs", "true_share")
    return [dict(zip(columns, row, strict=True)) for row in con.execute(
        _M_AGAINST_TRUTH_SQL.format(judged=_JUDGED_CTE, true_levels=true_levels)).fetchall()]


def _band_sql(bands: list[float]) -> str:
    """The lower bound of the band a match_probability falls in (0 below the first bound)."""
    cases = " ".join(f"when match_probability >= {b!r} then {b!r}" for b in reversed(bands))
    return f"case {cases} else 0.0 end"


def explain_misses(con: duckdb.DuckDBPyConnection, threshold: float, project_dir: Path) -> dict[str, Any]:
    """The five breakdowns of the module doc, on a connection holding `identity_eval`.

    Args:
        con: the warehouse connection `evaluate` used (its `identity_eval` temp table).
        threshold: the match probability threshold the build used (`identity_match_threshold`).
        project_dir: the dbt project the warehouse was built with (its guard macro).
    """
    guard_reason = guard_failure_sql(project_dir)
    con.execute(_MISSED_SQL.format(threshold=float(threshold), guard_reason=guard_reason))
    cursor = con.execute(_LINKABLE_SPLIT_SQL)
    linkable = dict(zip([d[0] for d in cursor.description], cursor.fetchone(), strict=True))
    missed = [{"evidence": e, "names": n, "stopped_by": s, "pairs": c} for e, n, s, c in con.execute(
        "select evidence, names, stopped_by, count(*) from identity_missed_pairs group by all order by all"
    ).fetchall()]
    guarded = [{"guard": g, "true_pairs": t, "false_pairs": f} for g, t, f in con.execute(
        _GUARDED_SQL.format(judged=_JUDGED_CTE, threshold=float(threshold), guard_reason=guard_reason)).fetchall()]
    bands = sorted({*_BANDS, float(threshold)})
    upper = dict(zip((0.0, *bands), (*bands, 1.0), strict=True))
    calibration = [{"band_from": float(b), "band_to": upper[float(b)], "true_pairs": t, "false_pairs": f,
                    "mean_probability": p}
                   for b, t, f, p in con.execute(_CALIBRATION_SQL.format(
                       judged=_JUDGED_CTE, guard_reason=guard_reason, band=_band_sql(bands))).fetchall()]
    return {"linkable_missed": {k: int(v or 0) for k, v in linkable.items()},
            "missed_profile_pairs": missed, "confident_pairs_guarded": guarded,
            "calibration": calibration, "m_against_truth": _m_against_truth(con)}


_LEGEND = ("shared: the strongest of birth date (<= 2 characters apart), postcode (<= 1 edit), "
           "street, mailbox name or city (similar), phone (<= 1 digit), else names only. "
           "guard: birth dates = they differ clearly; first name = it differs, is two edits off or "
           "is missing, and no birth date agrees; names only = no evidence beyond the names "
           "(macros/identity_match_weights.sql). cluster guard = matched, kept apart by the cluster "
           "conflict or size guards.")


def _label(code: str) -> str:
    return code.split(" ", 1)[1]


def format_misses(misses: dict[str, Any]) -> list[Table]:
    """Rich tables: the linkable split, missed pairs by evidence × cause, guarded confident pairs,
    calibration, learned m against the truth."""
    split = misses["linkable_missed"]
    linkable = Table("missed linkable pairs", "pairs", title="Where the missed linkable pairs are")
    linkable.add_row("between two parts of a person that both hold a CRM/shop record",
                     f"{split['pairs_between_profile_parts']:,}")
    linkable.add_row("  of them CRM/shop pairs", f"{split['profile_pairs']:,}")
    linkable.add_row("of a cookie attached to none of its person's records",
                     f"{split['pairs_of_unattached_cookies']:,}")
    causes = sorted({m["stopped_by"] for m in misses["missed_profile_pairs"]})
    by_evidence = Table("shared", *(_label(c) for c in causes), "names equal",
                        title="Missed CRM/shop pairs: what they share beyond the names, what stopped them",
                        caption=_LEGEND)
    for evidence in sorted({m["evidence"] for m in misses["missed_profile_pairs"]}):
        rows = [m for m in misses["missed_profile_pairs"] if m["evidence"] == evidence]
        by_evidence.add_row(_label(evidence),
                            *(f"{sum(m['pairs'] for m in rows if m['stopped_by'] == c):,}" for c in causes),
                            f"{sum(m['pairs'] for m in rows if m['names'] == 'equal'):,}")
    guarded = Table("guard", "true pairs", "false pairs",
                    title="Pairs at or above the threshold that a guard rejected")
    for g in misses["confident_pairs_guarded"]:
        guarded.add_row(g["guard"], f"{g['true_pairs']:,}", f"{g['false_pairs']:,}")
    calibration = Table("predicted probability", "true pairs", "false pairs", "share true", "mean predicted",
                        title="Scored CRM/shop pairs that pass the guards, by predicted probability",
                        caption="A calibrated model's share true follows its mean predicted probability; "
                                "pairs at or above the threshold are merged.")
    for c in misses["calibration"]:
        pairs = c["true_pairs"] + c["false_pairs"]
        calibration.add_row(f"{c['band_from']:g} to {c['band_to']:g}",
                            f"{c['true_pairs']:,}", f"{c['false_pairs']:,}",
                            f"{c['true_pairs'] / pairs:.3f}", f"{c['mean_probability']:.3f}")
    learned = Table("comparison", "level", "learned m", "share among true pairs", "true pairs",
                    title="The model's m against the truth",
                    caption="Share of each level among the scored CRM/shop pairs of one person where both "
                            "records have the field. Far apart: EM learned something the data does not say.")
    for m in misses["m_against_truth"]:
        share = "" if m["true_share"] is None else f"{m['true_share']:.3f}"
        learned.add_row(m["comparison"], str(m["comparison_level"]), f"{m['m_probability']:.3f}", share,
                        f"{m['true_pairs']:,}")
    return [linkable, by_evidence, guarded, calibration, learned]

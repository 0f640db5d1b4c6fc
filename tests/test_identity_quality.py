"""Identity resolution on generated data stays above the quality bar (real extract + dbt)."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from personalization.config import load_settings
from personalization.extract import extract_source
from personalization.generate import generate
from personalization.warehouse.dbt import invoke
from personalization.warehouse.evaluate import evaluate, format_report, match_threshold
from personalization.warehouse.misses import format_misses, guard_failure_sql

IDENTITY_SELECT = ["+identity_map", "+identity_merges", "+int_identity__splits",
                   "+int_identity__oversized_clusters"]


@pytest.mark.slow
def test_identity_precision_and_recall_on_generated_data(tmp_path):
    settings = load_settings(home=tmp_path)
    ds = date(2026, 1, 1)
    truth = tmp_path / "truth.parquet"
    generate(out=settings.landing_dir, customers=1500, days=1, seed=11, start=ds, truth_path=truth)
    for source in ("crm", "shop", "pixel"):
        extract_source(source, ds, settings)
    invoke(["build", "--select", *IDENTITY_SELECT, "--indirect-selection", "cautious"], settings, ds=ds)

    result = evaluate(truth, settings, misses=True)

    linkable = result["scopes"]["linkable"]
    assert linkable["precision"] >= 0.98, format_report(result)
    assert linkable["recall"] >= 0.95, format_report(result)
    assert result["precision"] >= 0.98
    # Every record in the truth file that reached the warehouse has exactly one person.
    assert result["records_evaluated"] == result["scopes"]["all"]["records_evaluated"] > 0
    assert result["truth_records"] >= result["records_evaluated"]

    # Every missed pair is explained once: the linkable ones split into profile parts and
    # unattached cookies, the CRM/shop ones each get one evidence and one cause.
    misses, profiles = result["misses"], result["scopes"]["profiles"]
    split = misses["linkable_missed"]
    assert split["pairs_between_profile_parts"] + split["pairs_of_unattached_cookies"] == \
        linkable["true_pairs"] - linkable["true_positive_pairs"]
    missed_profile_pairs = profiles["true_pairs"] - profiles["true_positive_pairs"]
    assert split["profile_pairs"] == sum(m["pairs"] for m in misses["missed_profile_pairs"]) == missed_profile_pairs
    assert {m["stopped_by"].split(" ", 1)[1] for m in misses["missed_profile_pairs"]} <= {
        "not compared", "below threshold", "guard: birth dates", "guard: first name", "guard: names only",
        "cluster guard"}
    rendered = "".join(str(t.title) for t in format_misses(misses))
    assert "what stopped them" in rendered

    # The reasons come from the guard macro the model ran: a confident pair has a reason
    # exactly when the build refused it.
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        confident, disagreeing = con.execute(f"""
            select count(*), count(*) filter (where is_match = ({guard_failure_sql(settings.project_dir)} is not null))
            from int_identity__scored_pairs where match_probability >= {match_threshold(settings)}
        """).fetchone()
    assert confident > 0 and disagreeing == 0

    # Calibration: the bands hold every scored pair that passes the guards once, and the
    # bands from the threshold up hold exactly the pairs the build matched.
    bands = misses["calibration"]
    assert [b["band_from"] for b in bands] == sorted(b["band_from"] for b in bands)
    assert all(b["band_from"] < b["band_to"] and b["band_from"] <= b["mean_probability"] <= b["band_to"]
               for b in bands)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        truth_keys = f"(select source || ':' || source_id from read_parquet('{truth}') where source in ('crm', 'shop'))"
        passing, matched = con.execute(f"""
            select count(*), count(*) filter (where is_match)
            from int_identity__scored_pairs
            where {guard_failure_sql(settings.project_dir)} is null
                and node_a in {truth_keys} and node_b in {truth_keys}
        """).fetchone()
    assert sum(b["true_pairs"] + b["false_pairs"] for b in bands) == passing > 0
    threshold = match_threshold(settings)
    assert sum(b["true_pairs"] + b["false_pairs"] for b in bands if b["band_from"] >= threshold) == matched > 0
    assert "by predicted probability" in rendered

    # m against the truth: one row per level of the model, each comparison's true shares add
    # up to one, and EM's m is near the truth's for each comparison's most common level. Not
    # the mailbox name's: only the same-birth-date session trains it, a few dozen pairs at
    # this size, so its weak prior (m0 = 0.2 for 10 pairs) still pulls it down.
    learned = misses["m_against_truth"]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        model = dict(((c, lv), m) for c, lv, m in con.execute(
            "select comparison, comparison_level, m_probability from int_identity__m_probabilities").fetchall())
    assert {(m["comparison"], m["comparison_level"]): m["m_probability"] for m in learned} == model
    for comparison in {m["comparison"] for m in learned}:
        rows = [m for m in learned if m["comparison"] == comparison]
        assert sum(m["true_share"] for m in rows) == pytest.approx(1.0), comparison
        top = max(rows, key=lambda m: m["true_pairs"])
        if comparison != "email_local_part":
            assert top["m_probability"] == pytest.approx(top["true_share"], abs=0.1), top
    assert "against the truth" in "".join(str(t.title) for t in format_misses(misses))

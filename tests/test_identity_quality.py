"""Identity resolution on generated data stays above the quality bar (real extract + dbt)."""

from __future__ import annotations

from datetime import date

import pytest

from personalization.config import load_settings
from personalization.extract import extract_source
from personalization.generate import generate
from personalization.warehouse.dbt import invoke
from personalization.warehouse.evaluate import evaluate, format_report

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

    result = evaluate(truth, settings)

    linkable = result["scopes"]["linkable"]
    assert linkable["precision"] >= 0.98, format_report(result)
    assert linkable["recall"] >= 0.95, format_report(result)
    assert result["precision"] >= 0.98
    # Every record in the truth file that reached the warehouse has exactly one person.
    assert result["records_evaluated"] == result["scopes"]["all"]["records_evaluated"] > 0
    assert result["truth_records"] >= result["records_evaluated"]

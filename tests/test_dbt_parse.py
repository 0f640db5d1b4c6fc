"""dbt keeps its parse across nights: the run-time vars (dbt.RUN_TIME_VARS, ds above all) do
not change what dbt parses, so a new `ds` must not cost a full re-parse, and must still reach
the SQL that runs."""

from __future__ import annotations

import json
from datetime import date

import pytest

from personalization.config import load_settings
from personalization.warehouse.dbt import RUN_TIME_VARS, _model_vars, invoke

# Fields dbt fills per invocation (times, ids, compiled SQL), not from the project's files.
VOLATILE = {"created_at", "compiled_code", "compiled", "extra_ctes_injected", "generated_at",
            "invocation_id", "invocation_started_at"}

NIGHT_A = {"ds": "2026-03-01", "data_test_recent_days": 3, "data_tests_passed_through": None,
           "segment_history_skip": [],
           "confidence_threshold": 0.8, "erasure_confirmed_email_sha256": []}
NIGHT_B = {"ds": "2027-11-30", "data_test_recent_days": 0, "data_tests_passed_through": "2027-11-28",
           "segment_history_skip": ["vip"],
           "confidence_threshold": 0.55, "erasure_confirmed_email_sha256": ["ab" * 32]}


@pytest.fixture()
def settings(tmp_path):
    return load_settings(home=tmp_path / "home")


def _scrub(value):
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _parsed(settings, night: dict, partial: bool = True) -> tuple[dict, dict]:
    invoke(["parse"] + ([] if partial else ["--no-partial-parse"]), settings,
           ds=date.fromisoformat(night["ds"]), extra_vars={k: v for k, v in night.items() if k != "ds"})
    target = settings.dbt_target_dir
    manifest = json.loads((target / "manifest.json").read_text())
    perf = json.loads((target / "perf_info.json").read_text())
    return {k: _scrub(manifest[k]) for k in ("nodes", "sources", "macros", "unit_tests")}, perf


def test_the_nights_vars_are_the_run_time_vars():
    assert set(NIGHT_A) == set(NIGHT_B) == RUN_TIME_VARS


def test_run_time_vars_do_not_change_the_parse(settings):
    # Full parses under two different values of every run-time var: if a config, ref or YAML
    # property read one of them, the manifests would differ and a kept parse would be stale.
    first, _ = _parsed(settings, NIGHT_A, partial=False)
    second, _ = _parsed(settings, NIGHT_B, partial=False)
    assert first == second


def test_a_new_night_reuses_the_parse_and_runs_with_its_own_ds(settings):
    _, perf = _parsed(settings, NIGHT_A)
    assert perf["parsed_path_count"] > 100  # the first parse reads every file
    _, perf = _parsed(settings, NIGHT_B)
    assert perf["is_partial_parse_enabled"] and perf["parsed_path_count"] == 0
    # Another var still forces a full parse.
    _, perf = _parsed(settings, {**NIGHT_B, "identity_reestimate": True})
    assert perf["parsed_path_count"] > 100
    # The SQL compiled after a kept parse carries the new night's ds.
    invoke(["compile", "--select", "stg_scores__customer_scores", "customer_engagement_daily"],
           settings, ds=date(2027, 12, 1), extra_vars=_model_vars(settings))
    compiled = settings.dbt_target_dir / "compiled" / "personalization" / "dbt_project" / "models"
    assert "ds=2027-12-01/customer_scores.parquet" in (
        compiled / "staging" / "scores" / "stg_scores__customer_scores.sql").read_text()
    assert "date '2027-12-01'" in (compiled / "marts" / "customer_engagement_daily.sql").read_text()


def test_the_profiles_fallbacks_are_the_settings_defaults(settings):
    # profiles.yml falls back to a literal when dbt runs without Settings.dbt_env() (an
    # analyst's own `dbt build`); each literal must be what Settings passes by default, or
    # the two ways of running dbt would use different memory limits or threads.
    import re

    from personalization.config import REPO_ROOT

    text = (REPO_ROOT / "profiles.yml").read_text()
    fallbacks = set(re.findall(r"env_var\('(PERSONALIZATION_[A-Z_]+)', '([^']*)'\)", text))
    env = settings.dbt_env()
    compared = {(name, value) for name, value in fallbacks
                if name.endswith(("_MEMORY_LIMIT", "_THREADS"))}
    assert {name for name, _ in compared} == {"PERSONALIZATION_DUCKDB_MEMORY_LIMIT",
                                              "PERSONALIZATION_DUCKDB_THREADS",
                                              "PERSONALIZATION_DBT_THREADS"}
    assert sorted(compared) == sorted((name, env[name]) for name, _ in compared)


def _model_dependencies(settings, flags: list[str]) -> dict[str, list[str]]:
    # A fresh parse (`compile` of one cheap model, which also parses every file) with flags.
    invoke(["compile", "--no-partial-parse", "--select", "int_identity__splits", *flags],
           settings, ds=date.fromisoformat(NIGHT_A["ds"]))
    manifest = json.loads((settings.dbt_target_dir / "manifest.json").read_text())
    return {name: sorted(node["depends_on"]["nodes"]) for name, node in manifest["nodes"].items()
            if name.startswith("model.")}


def test_a_parse_under_full_refresh_keeps_every_dependency(settings):
    # The build refreshes fully by itself when a backfill date is older than the warehouse's
    # data; if that run parses afresh (new code, new target folder), a ref reached only when
    # not flags.FULL_REFRESH is missing from the kept manifest, and the next normal night fails
    # with "dbt was unable to infer all dependencies" (seen on int_identity__cluster_region).
    assert _model_dependencies(settings, ["--full-refresh"]) == _model_dependencies(settings, [])

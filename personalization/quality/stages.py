"""The quality gate per stage of the nightly flow: which suites run on which frames.

`gate(ds, stage, settings)` validates one stage. A failed expectation of error severity raises
`QualityGateError` (so nothing downstream runs); warnings are logged and kept in the stored
results. Results: `<quality_dir>/<ds>/<stage>.json`; Data Docs:
`<quality_dir>/data_docs/index.html`.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import date
from pathlib import Path

import duckdb

from expectations import drift as drift_suites
from expectations import exports as export_suites
from expectations import lake as lake_suites
from expectations import marts as mart_suites
from expectations import segments as segment_suites
from personalization.config import Settings
from personalization.exceptions import QualityGateError
from personalization.observability import StepReport, log_event
from personalization.privacy import encryption
from personalization.quality import drift, frames
from personalization.quality.gx_runner import Check, Finding, run_checks

logger = logging.getLogger(__name__)
STAGES = ("lake", "marts", "segments", "export")
VOLUME_CHECKED = ("shop/orders", "pixel/events")
PROFILE_RATIO_BOUNDS = (0.3, 0.995)


def gate(ds: date, stage: str, settings: Settings) -> StepReport:
    """Validate `stage` for `ds`; raise QualityGateError on any error-severity failure."""
    if stage not in STAGES:
        raise QualityGateError(f"unknown quality-gate stage {stage!r}; known: {list(STAGES)}")
    if stage == "export":
        return validate_export(settings.exports_dir / ds.isoformat(), ds, settings)
    start = time.perf_counter()
    previous = _previous_metrics(settings, ds, stage)
    metrics: dict = {"sizes": {}, "distributions": {}}
    if stage == "lake":
        with duckdb.connect(config=settings.duckdb_config("gate")) as con:
            encryption.configure(con, settings)
            checks = _lake_checks(con, settings, ds, previous, metrics)
    else:
        with _warehouse(settings) as con:
            checks = (_mart_checks if stage == "marts" else _segment_checks)(
                con, settings, previous, metrics)
    return _finish(ds, stage, settings, checks, metrics, start)


def validate_export(export_dir: Path, ds: date, settings: Settings) -> StepReport:
    """Validate export files (a temp folder before publishing, or a published export)."""
    start = time.perf_counter()
    files = sorted((export_dir / "segments").glob("*.parquet"))
    if not files:
        raise QualityGateError(f"no segment files to validate in {export_dir}")
    suites = [export_suites.build_suite(f.stem) for f in files]
    with _warehouse(settings) as con:
        judged = frames.export_frames(con, settings, files, suites)
    checks = [Check(f"export.{f.stem}", frame, suite, key="unified_id", rows=rows)
              for f, suite, (frame, rows) in zip(files, suites, judged, strict=True)]
    return _finish(ds, "export", settings, checks, {"sizes": {}, "distributions": {}}, start)


def _warehouse(settings: Settings) -> duckdb.DuckDBPyConnection:
    if not settings.warehouse_path.exists():
        raise QualityGateError(f"warehouse not found at {settings.warehouse_path}: build it first")
    con = encryption.connect_warehouse(settings, read_only=True)
    encryption.configure(con, settings)  # the gate also reads the lake's erasure requests
    return con


def _lake_checks(con, settings: Settings, ds: date, previous: dict, metrics: dict) -> list[Check]:
    checks = []
    for table in lake_suites.KEYS:
        frame = frames.lake_frame(con, settings, table, ds)
        log = frames.load_log(con, settings, table, ds)
        if frame is None or log is None:
            continue  # a source that is not required and did not deliver
        metrics["sizes"][table] = len(frame)
        bounds = None
        prev = previous.get("sizes", {}).get(table)
        if table in VOLUME_CHECKED and prev and prev >= settings.segment_size_min_baseline:
            bounds = _band(prev, settings.segment_size_change_pct)
        suite = lake_suites.build_suite(table, log["rows_loaded"], settings.clock_skew_minutes * 60,
                                        bounds)
        checks.append(Check(f"lake.{table.replace('/', '.')}", frame, suite, key=lake_suites.KEYS[table][0]))
    return checks


def _mart_checks(con, settings: Settings, previous: dict, metrics: dict) -> list[Check]:
    identity_suite, profiles_suite, rfm_suite = (mart_suites.identity_map_suite(),
                                                 mart_suites.customer_profiles_suite(),
                                                 mart_suites.customer_rfm_suite())
    rfm, rfm_rows = frames.rfm_frame(con, rfm_suite)
    identity, identity_rows = frames.identity_map_frame(con, identity_suite)
    profiles, profile_rows = frames.profiles_frame(con, settings, profiles_suite)
    checks = [
        Check("identity_map", identity, identity_suite, key="source_id", rows=identity_rows),
        Check("customer_profiles", profiles, profiles_suite, key="unified_id", rows=profile_rows),
        Check("customer_rfm", rfm, rfm_suite, key="unified_id", rows=rfm_rows),
        Check("reconciliation", frames.reconciliation_frame(con),
              mart_suites.reconciliation_suite(*PROFILE_RATIO_BOUNDS)),
    ]
    # Drift needs every value, not only the suspects GX judges: three columns. (GX judging
    # all 1.16M rows at 1M took 1.9 of the gate's 6.1 s: its between checks map each value
    # through Python.)
    distribution = con.execute(
        "SELECT recency_days, frequency, monetary FROM customer_rfm").df()
    checks += _drift_checks("customer_rfm", distribution,
                            ["recency_days", "frequency", "monetary"], settings, previous, metrics)
    return checks


def _segment_checks(con, settings: Settings, previous: dict, metrics: dict) -> list[Check]:
    from personalization.warehouse.catalog import list_segments

    checks = []
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "customer_scores" in tables:
        suite = mart_suites.customer_scores_suite()
        scores, rows = frames.scores_frame(con, suite)
        checks.append(Check("customer_scores", scores, suite, key="unified_id", rows=rows))
        # Drift needs every score, not only the suspects GX judges: two columns.
        distribution = con.execute("SELECT p_vip, p_churn FROM customer_scores").df()
        checks += _drift_checks("customer_scores", distribution, ["p_vip", "p_churn"], settings,
                                previous, metrics, judged=_same_model(con, previous, metrics))
    for segment in list_segments(settings):
        if segment.name not in tables:
            log_event(logger, "segment_not_built", level=logging.WARNING, segment=segment.name)
            continue
        frame = frames.segment_frame(con, segment.name)
        metrics["sizes"][segment.name] = len(frame)
        prev = previous.get("sizes", {}).get(segment.name)
        warn = error = None
        if prev is not None and prev >= settings.segment_size_min_baseline:
            warn = _band(prev, settings.segment_size_change_pct)
            f = settings.segment_size_error_factor
            error = (int(prev / f), int(prev * f) + 1)
        checks.append(Check(f"segment.{segment.name}", frame,
                            segment_suites.build_suite(segment.name, warn, error), key="unified_id"))
    return checks


def _same_model(con, previous: dict, metrics: dict) -> list[str]:
    """The score columns whose model version is the previous run's: a new model moves its
    scores by design (its own validation judged it), so only the same model's drift counts."""
    versions = dict(zip(("p_vip", "p_churn"), con.execute(
        "SELECT any_value(vip_model_version), any_value(churn_model_version) FROM customer_scores"
    ).fetchone(), strict=True))
    metrics["model_versions"] = versions
    before = previous.get("model_versions")
    same = [c for c in versions if before is None or before.get(c) == versions[c]]
    for column in sorted(set(versions) - set(same)):
        log_event(logger, "drift_not_judged_new_model", level=logging.WARNING, column=column,
                  previous=before.get(column), current=versions[column])
    return same


def _drift_checks(name: str, frame, columns: list[str], settings: Settings, previous: dict,
                  metrics: dict, judged: list[str] | None = None) -> list[Check]:
    """PSI of `columns` against the previous run (only `judged` ones, default all); every
    column's histogram is stored as the next run's baseline."""
    import pandas as pd

    rows = []
    for col in columns:
        key = f"{name}.{col}"
        metrics["distributions"][key] = drift.histogram(frame[col])
        prev = previous.get("distributions", {}).get(key)
        if judged is not None and col not in judged:
            continue
        value = drift.psi(prev, frame[col]) if prev else None
        if value is not None:
            # Only a shift beyond sampling noise counts (small runs give large PSI by chance).
            floor = drift.noise_floor(prev, frame[col])
            rows.append({"feature": key, "psi": round(value, 4), "noise_floor": round(floor, 4),
                         "psi_significant": round(value, 4) if value > floor else 0.0})
    if not rows:
        return []
    return [Check(f"drift.{name}", pd.DataFrame(rows),
                  drift_suites.build_suite(name, settings.drift_psi_warn, settings.drift_psi_error),
                  key="feature")]


def _band(previous: int, pct: float) -> tuple[int, int]:
    return int(previous * (1 - pct / 100)), int(previous * (1 + pct / 100)) + 1


def _previous_metrics(settings: Settings, ds: date, stage: str) -> dict:
    """Metrics of the latest earlier run of this stage (drift and volume baselines)."""
    candidates = sorted(p for p in settings.quality_dir.glob(f"*/{stage}.metrics.json")
                        if p.parent.name < ds.isoformat())
    return json.loads(candidates[-1].read_text()) if candidates else {}


def _finish(ds: date, stage: str, settings: Settings, checks: list[Check], metrics: dict,
            start: float) -> StepReport:
    findings, evaluated = run_checks(checks, settings.quality_dir / "data_docs")
    errors = [f for f in findings if f.severity == "error"]
    warnings = [f for f in findings if f.severity == "warning"]
    seconds = round(time.perf_counter() - start, 3)
    status = "failed" if errors else ("warning" if warnings else "passed")
    out_dir = settings.quality_dir / ds.isoformat()
    out_dir.mkdir(parents=True, exist_ok=True)
    result_path = out_dir / f"{stage}.json"
    result = {
        "ds": ds.isoformat(), "stage": stage, "status": status, "seconds": seconds,
        "datasets": [c.name for c in checks], "rows_checked": sum(len(c.frame) if c.rows is None else c.rows for c in checks),
        "expectations_evaluated": evaluated,
        "errors": [_as_dict(f) for f in errors], "warnings": [_as_dict(f) for f in warnings],
    }
    result_path.write_text(json.dumps(result, indent=2, default=str))
    if stage != "export":
        (out_dir / f"{stage}.metrics.json").write_text(json.dumps(metrics, default=str))
    for f in warnings:
        log_event(logger, "quality_warning", level=logging.WARNING, stage=stage, finding=f.line())
    log_event(logger, "quality_gate", stage=stage, ds=ds.isoformat(), status=status,
              datasets=len(checks), expectations=evaluated, errors=len(errors),
              warnings=len(warnings), seconds=seconds)
    if errors:
        lines = "\n  ".join(f.line() for f in errors[:10])
        raise QualityGateError(
            f"quality gate '{stage}' failed for {ds}: {len(errors)} expectation(s) failed; "
            f"nothing downstream runs.\n  {lines}\n  details: {result_path}")
    return StepReport(step=f"gate_{stage}", ds=ds.isoformat(), rows_in=result["rows_checked"],
                      rows_out=evaluated, seconds=seconds, status=status,
                      details={"warnings": [f.line() for f in warnings],
                               "results": str(result_path)})


def _as_dict(f: Finding) -> dict:
    return {"table": f.table, "expectation": f.expectation, "severity": f.severity,
            "kwargs": f.kwargs, "observed": f.observed, "unexpected_count": f.unexpected_count,
            "sample": f.sample, "message": f.line()}

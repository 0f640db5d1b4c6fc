"""Run dbt in-process (dbtRunner) against the project at the repo root.

One place knows the dbt command line: which nodes a stage selects, the paths and env the
profile reads, and how dbt's results become a `StepReport` or one `WarehouseError`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from personalization.config import Settings
from personalization.exceptions import WarehouseError
from personalization.observability import StepReport, log_event, timed
from personalization.privacy import erased_events
from personalization.warehouse import segment_unit_tests, tested_nights
from personalization.warehouse.connection import tables_in, warehouse_connection

logger = logging.getLogger(__name__)

MODELS = "dbt_project/models"

# What each stage builds. The marts stage is everything upstream of the public marts
# (seeds included); the segments stage is scores, segments and their history, which read
# the marts built earlier the same night.
STAGES: dict[str, dict[str, Any]] = {
    "marts": {
        "select": [
            f"path:{MODELS}/staging",
            f"path:{MODELS}/intermediate",
            f"+path:{MODELS}/marts",
        ],
        "exclude": [
            "tag:segment",
            "tag:scores",
            f"path:{MODELS}/segments",
            f"path:{MODELS}/segment_history",
            f"path:{MODELS}/scoring",
        ],
        # A test that also reads a segment model waits for the segments stage.
        "indirect_selection": ["cautious"],
        # dbt unit tests of the staging/intermediate/marts models check SQL logic on fixed
        # rows, not the night's data: CI runs them (tests/test_warehouse.py), a night does
        # not (~2.5 CPU s at any scale). Segments keep theirs (analysts edit segment SQL), once
        # per version of the project (segment_unit_tests.py).
        "unit_tests": False,
    },
    # The segments stage runs as two dbt calls (see build_segments): segment history finds
    # the segments through the graph, so dbt does not know it must wait for them.
    "segments": {
        "select": ["tag:scores", "tag:segment"],
        "exclude": [],
        "indirect_selection": ["eager"],
    },
    "segment_history": {
        "select": ["tag:segment_history"],
        "exclude": [],
        "indirect_selection": ["eager"],
    },
}

# Incremental staging tables; an older ds than what they already hold forces a full rebuild.
INCREMENTAL_TABLES = ("stg_pixel__events", "stg_shop__orders", "stg_shop__order_items",
                      "stg_crm__contact_versions", "stg_shop__customer_versions")

_FAILED = {"error", "fail", "runtime error"}

# dbt re-parses the whole project when --vars change (dbt-core #6323), i.e. every night,
# ~3.5 CPU s. These vars are read only at run time (model SQL, test SQL, hooks), never at
# parse time (configs, refs, YAML), so dbt may keep its parse across their values:
# tests/test_dbt_parse.py parses the project under different values of each and checks that
# the manifests are the same. Any other var, the profile and the target still force a parse.
RUN_TIME_VARS = frozenset({"ds", "data_test_recent_days", "data_tests_passed_through",
                           "segment_history_skip", "confidence_threshold",
                           "erasure_confirmed_email_sha256"})


@contextmanager
def dbt_environment(settings: Settings) -> Iterator[None]:
    """Set the env vars the profile and project read for the duration of one dbt call."""
    env = {**settings.dbt_env(), "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    for directory in (settings.dbt_target_dir, settings.logs_dir, settings.home / "duckdb_tmp",
                      settings.warehouse_path.parent):
        Path(directory).mkdir(parents=True, exist_ok=True)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def common_args(settings: Settings) -> list[str]:
    """Paths and flags every dbt command gets."""
    return [
        "--project-dir", str(settings.project_dir),
        "--profiles-dir", str(settings.project_dir),
        "--target-path", str(settings.dbt_target_dir),
        "--log-path", str(settings.logs_dir),
    ]


def invoke(command: Sequence[str], settings: Settings, ds: date | None = None,
           extra_vars: dict[str, Any] | None = None, tolerate: Callable[[Any], bool] | None = None,
           ) -> Any:
    """Run one dbt command in-process; return dbt's result object or raise WarehouseError.

    Args:
        command: dbt sub-command and its own arguments, e.g. ``["test", "--select", "x"]``.
        settings: where the warehouse, lake, target and logs live.
        ds: the logical date, passed as ``--vars {ds: ...}`` when given.
        extra_vars: more dbt vars.
        tolerate: failed results for which this returns True do not raise (the caller
            handles them, e.g. one broken segment must not stop the others).

    Raises:
        WarehouseError: dbt could not run, or a node errored / a test failed; the message
            lists each failing node with dbt's message, one line each.
    """
    from dbt.cli.main import dbtRunner

    _parse_once_across_run_time_vars()
    args = ["--quiet", "--no-use-colors", "--no-send-anonymous-usage-stats",
            "--no-version-check", *command, *common_args(settings)]
    run_vars = {**({"ds": ds.isoformat()} if ds is not None else {}), **(extra_vars or {})}
    if settings.engine == "spark":
        from personalization.warehouse import spark

        spark.session(settings)  # the session dbt-spark's `session` method picks up
        run_vars["lake_tables"] = spark.lake_tables(settings)
        if command and command[0] == "build" and "--exclude-resource-type" not in command:
            # dbt unit tests check the SQL logic, which is one text for both engines: they
            # run on DuckDB; on Spark their literal fixtures would only cost time.
            args += ["--exclude-resource-type", "unit_test"]
    if run_vars:
        args += ["--vars", json.dumps(run_vars)]
    with dbt_environment(settings):
        try:
            outcome = dbtRunner().invoke(args)
        finally:
            _release_duckdb()
    failures = _failures(outcome, tolerate)
    if outcome.exception is not None or failures or (not outcome.success and tolerate is None):
        if not failures:
            failures = [_one_line(str(outcome.exception or "dbt failed without a message"))]
        raise WarehouseError(f"dbt {command[0]} failed:\n" + "\n".join(failures))
    return outcome.result


def build(ds: date, stage: str, settings: Settings, full_refresh: bool = False) -> StepReport:
    """`dbt build` (run + test) of one stage for the logical date `ds`.

    Args:
        ds: logical date; every "last N days" in the models is relative to it.
        stage: ``"marts"`` (staging, identity, marts) or ``"segments"`` (scores, segments,
            segment history).
        settings: the product settings.
        full_refresh: rebuild incremental models from the whole lake. Also done automatically
            when `ds` is older than data the incremental tables already hold (a backfill).

    Returns:
        StepReport with rows_out = models built, details = per-model seconds and test counts.

    Raises:
        WarehouseError: unknown stage, or any model/test failed.
    """
    if stage not in ("marts", "segments"):
        raise WarehouseError(f"unknown dbt stage {stage!r}; known: ['marts', 'segments']")
    if stage == "segments":
        return build_segments(ds, settings)
    spec = STAGES[stage]
    if stage == "marts" and not full_refresh and _holds_later_data(ds, settings):
        log_event(logger, "dbt_full_refresh", ds=ds.isoformat(),
                  reason="incremental tables hold deliveries after ds")
        full_refresh = True
    command = _command(spec, settings)
    if full_refresh:
        command.append("--full-refresh")
    model_vars = _model_vars(settings)
    tested_nights.forget(ds, settings, everything=full_refresh)
    first = not settings.warehouse_path.exists()
    if not full_refresh:
        erased_events.repair(ds, settings)
        model_vars.update(data_test_window_vars(ds, settings))
    with timed() as t:
        result = invoke(command, settings, ds=ds, extra_vars=model_vars)
    tested_nights.record(ds, settings)
    if first or full_refresh:
        erased_events.mark_consistent(settings)
    _serve(result, settings)
    report = _report(result, ds, stage, t["seconds"], full_refresh)
    log_event(logger, "dbt_build_done", stage=stage, ds=ds.isoformat(),
              models=report.rows_out, tests=report.details["tests_passed"],
              seconds=report.seconds, full_refresh=full_refresh)
    return report


def data_test_window_vars(ds: date, settings: Settings) -> dict[str, Any]:
    """The vars of tonight's marts data test window (dbt_project/macros/recent_deliveries.sql).

    `{"data_test_recent_days": 0}` when every row must be checked: on the first build (it loads
    every delivery at once) and on the weekly whole check (`data_tests_whole_weekday`);
    `--full-refresh` checks every row by itself. Otherwise the rows written since the newest
    night whose tests passed (`data_tests_passed_through`, personalization/warehouse/
    tested_nights.py), or, with none recorded, the project's window of recent deliveries."""
    if not _holds_loaded_events(settings):
        reason = "first_build"
    elif ds.isoweekday() == settings.data_tests_whole_weekday:
        reason = "weekly"
    else:
        passed = tested_nights.passed_through(ds, settings)
        return {} if passed is None else {"data_tests_passed_through": passed.isoformat()}
    log_event(logger, "dbt_data_tests_whole", ds=ds.isoformat(), reason=reason)
    return {"data_test_recent_days": 0}


def build_segments(ds: date, settings: Settings) -> StepReport:
    """Build scores and segments, then the membership history, for `ds`.

    A segment whose SQL or tests fail does not stop the others: it is reported in
    `details["failed_segments"]` (and in `<dbt target>/segment_build_<ds>.json`, which the
    export reads to keep that segment's previous good files), and its history is left
    untouched. Anything else failing (customer_scores, the history) raises WarehouseError.
    """
    segments = _segment_names(settings)
    fingerprint = segment_unit_tests.project_fingerprint(settings)
    unit_tests = not segment_unit_tests.already_passed(fingerprint, settings)
    command = _command(STAGES["segments"], settings, unit_tests=unit_tests)

    def is_segment_failure(result: Any) -> bool:
        return _segment_of(result.node, segments) is not None

    with timed() as t:
        result = invoke(command, settings, ds=ds, extra_vars=_model_vars(settings),
                        tolerate=is_segment_failure)
        failed = {}
        for r in getattr(result, "results", None) or []:
            name = _segment_of(r.node, segments)
            if name and str(r.status) in _FAILED | {"skipped"}:
                failed.setdefault(name, f"{r.node.name}: {_one_line(r.message or str(r.status))}")
        record = settings.dbt_target_dir / f"segment_build_{ds.isoformat()}.json"
        record.write_text(json.dumps({"ds": ds.isoformat(), "failed_segments": failed}, indent=2))
        unit_test_statuses = segment_unit_tests.statuses(result)
        segment_unit_tests.record(unit_test_statuses, fingerprint, settings)
        _serve(result, settings)
        # The skip list only when a segment failed (a run-time var: dbt keeps its parse).
        skip = {"segment_history_skip": sorted(failed)} if failed else {}
        history = invoke(_command(STAGES["segment_history"], settings), settings, ds=ds,
                         extra_vars={**_model_vars(settings), **skip})
        _serve(history, settings)
    report = _report(result, ds, "segments", t["seconds"], False)
    history_report = _report(history, ds, "segments", 0, False)
    report.rows_out += history_report.rows_out
    report.details["model_seconds"].update(history_report.details["model_seconds"])
    report.details["failed_segments"] = failed
    # Unit tests run tonight (0: this version of the project passed them on an earlier night).
    report.details["unit_tests"] = len(unit_test_statuses)
    if failed:
        report.status = "warn"
        for name, message in failed.items():
            log_event(logger, "segment_failed", level=logging.WARNING, segment=name, error=message)
    log_event(logger, "dbt_build_done", stage="segments", ds=ds.isoformat(),
              models=report.rows_out, failed_segments=len(failed), seconds=report.seconds)
    return report


def _serve(result: Any, settings: Settings) -> None:
    """On Spark, copy what the run built into the DuckDB warehouse the later steps read."""
    if settings.engine == "spark":
        from personalization.warehouse import spark

        spark.serve(result, settings)


def _command(spec: dict[str, Any], settings: Settings, unit_tests: bool | None = None) -> list[str]:
    # Without dbt's data tests only where the same SQL was tested on the same data by another
    # engine's run (settings.dbt_tests, off in the Spark equality test); still `build`, so
    # the seeds the models read are loaded. `unit_tests` overrides the stage's own choice.
    command = ["build", "--select", *spec["select"]]
    if spec["exclude"]:
        command += ["--exclude", *spec["exclude"]]
    if settings.dbt_tests:
        command += ["--indirect-selection", *spec["indirect_selection"]]
        if not (spec.get("unit_tests", True) if unit_tests is None else unit_tests):
            command += ["--exclude-resource-type", "unit_test"]
    else:
        command += ["--exclude-resource-type", "test", "unit_test"]
    return command


def _model_vars(settings: Settings) -> dict[str, Any]:
    """Settings the models read as dbt vars."""
    from personalization.privacy.reviews import confirmed_hashes

    return {"confidence_threshold": settings.confidence_threshold,
            "erasure_confirmed_email_sha256": confirmed_hashes(settings)}


def _segment_names(settings: Settings) -> set[str]:
    """Segment model names from the project's SQL files (the manifest may be stale)."""
    folder = settings.project_dir / MODELS / "segments"
    return {p.stem for p in folder.rglob("*.sql")}


def _segment_of(node: Any, segments: set[str]) -> str | None:
    """The segment a result belongs to: the model itself, or the model a test is attached to
    (a unit test names it as `tested_node_unique_id`)."""
    if node.resource_type == "model":
        return node.name if node.name in segments else None
    tested = getattr(node, "tested_node_unique_id", None)
    parents = [tested] if tested else []
    parents += getattr(getattr(node, "depends_on", None), "nodes", []) or []
    for parent in parents:
        name = parent.split(".")[-1]
        if parent.startswith("model.") and name in segments:
            return name
    return None


def generate_docs(settings: Settings, ds: date | None = None) -> Path:
    """`dbt docs generate` into the dbt target dir; returns the path of index.html."""
    # The nightly build's --vars: the docs show the SQL that ran, and dbt reuses its parse.
    invoke(["docs", "generate"], settings, ds=ds, extra_vars=_model_vars(settings))
    index = settings.dbt_target_dir / "index.html"
    if not index.exists():
        raise WarehouseError(f"dbt docs generate wrote no {index}")
    return index


def _parse_once_across_run_time_vars() -> None:
    """Leave RUN_TIME_VARS out of the hash by which dbt decides to re-parse (once per process)."""
    from dbt.parser.manifest import ManifestLoader

    original = ManifestLoader.build_manifest_state_check
    if getattr(original, "ignores_run_time_vars", False):
        return

    def state_check(self: Any) -> Any:
        config = self.root_project
        all_vars = config.cli_vars
        config.cli_vars = {k: v for k, v in all_vars.items() if k not in RUN_TIME_VARS}
        try:
            return original(self)
        finally:
            config.cli_vars = all_vars

    state_check.ignores_run_time_vars = True  # type: ignore[attr-defined]
    ManifestLoader.build_manifest_state_check = state_check


def _report(result: Any, ds: date, stage: str, seconds: float, full_refresh: bool) -> StepReport:
    timings: dict[str, float] = {}
    tests = 0
    warned: list[str] = []
    for r in getattr(result, "results", []) or []:
        node = r.node
        if node.resource_type == "model":
            timings[node.name] = round(float(r.execution_time or 0.0), 3)
        elif node.resource_type in ("test", "unit_test"):
            tests += 1
            if str(r.status) == "warn":
                warned.append(f"{node.name}: {_one_line(r.message or '')}")
    return StepReport(
        step=f"build_{stage}",
        ds=ds.isoformat(),
        rows_out=len(timings),
        seconds=seconds,
        status="warn" if warned else "ok",
        details={"model_seconds": timings, "tests_passed": tests - len(warned),
                 "tests_warned": len(warned), "warnings": warned, "full_refresh": full_refresh},
    )


def _failures(outcome: Any, tolerate: Callable[[Any], bool] | None = None) -> list[str]:
    """One line per failed node: `name (resource_type): message`."""
    lines = []
    for r in getattr(outcome.result, "results", None) or []:
        if str(r.status) in _FAILED and not (tolerate and tolerate(r)):
            node = r.node
            lines.append(f"{node.name} ({node.resource_type}, {r.status}): "
                         f"{_one_line(r.message or '')}")
    return lines


def _one_line(message: str, limit: int = 400) -> str:
    text = re.sub(r"\s+", " ", message).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open for the process after a run.

    Otherwise the next step in this process (quality gate, scoring, a test) cannot open the
    warehouse file with another configuration (e.g. read-only), and a second warehouse path
    would be opened next to the first.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter: nothing held in-process
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if env is not None:
            try:
                env.close()
            except Exception as e:  # closing is best effort; the run itself succeeded or not
                log_event(logger, "duckdb_close_failed", level=logging.WARNING, error=str(e))


def _holds_loaded_events(settings: Settings) -> bool:
    """True when the DuckDB warehouse already holds the incremental event tables whose data
    tests check only the recent deliveries (on Spark they are rebuilt and checked whole)."""
    if settings.engine == "spark":
        return True
    if not settings.warehouse_path.exists():
        return False
    with warehouse_connection(settings, "inspect the warehouse") as con:
        return {"stg_pixel__events", "int_events__resolved"} <= tables_in(con, "main")


def _holds_later_data(ds: date, settings: Settings) -> bool:
    """True when an incremental staging table already holds a delivery after `ds`."""
    return any(newest is not None and newest > ds for newest in _newest_deliveries(settings).values())


def _newest_deliveries(settings: Settings) -> dict[str, date | None]:
    """The newest `delivered_on` of each incremental staging table the warehouse holds."""
    if settings.engine == "spark":
        from personalization.warehouse import spark

        return spark.newest_deliveries(settings, INCREMENTAL_TABLES)
    if not settings.warehouse_path.exists():
        return {}
    with warehouse_connection(settings, "inspect the warehouse") as con:
        present = tables_in(con, "main")
        return {table: con.execute(f"select max(delivered_on) from main.{table}").fetchone()[0]
                for table in INCREMENTAL_TABLES if table in present}

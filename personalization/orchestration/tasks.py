"""What the Airflow tasks run. Each function reads the task context, calls the product, and
returns a small JSON-able dict (counts and warnings, never data) that becomes the XCom.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

from personalization.observability import StepReport, configure_logging, log_event, warnings_of

logger = logging.getLogger(__name__)
SUMMARY_TASK = "run_summary"
SUMMARY_KEY = "summary"
BUSINESS_DAY_TASK = "business_day"


def _context() -> Any:
    from airflow.sdk import get_current_context

    # Airflow owns the log handlers inside a task; we only set levels (no duplicate lines).
    configure_logging(handler=False)
    return get_current_context()


def run_business_day(ctx: Any = None) -> str:
    """Task `business_day`: the day this run processes; fails at once if it has not ended."""
    from airflow.sdk.exceptions import AirflowFailException

    from personalization.orchestration.schedule import BusinessDayNotOverError, ensure_day_over

    ctx = ctx or _context()
    run = ctx["dag_run"]
    ds = _ds(ctx)
    log_event(logger, "business_day", ds=ds.isoformat(), run_id=run.run_id,
              run_type=str(run.run_type), logical_date=str(run.logical_date),
              run_after=str(run.run_after))
    try:
        ensure_day_over(ds, datetime.now(UTC))
    except BusinessDayNotOverError as e:
        raise AirflowFailException(str(e)) from None  # no retries: waiting does not help today
    return ds.isoformat()


def run_pipeline_step(name: str) -> dict[str, Any]:
    """Task `<step>`: run one `pipeline.STEPS` step for the run's business day.

    Sets the `extra` of the step's asset events; returns the counts and warnings.
    """
    from personalization.config import load_settings
    from personalization.orchestration.assets import event_extra, outlets_for
    from personalization.pipeline import run_step

    ctx = _context()
    ds = _ds(ctx)
    landing = (ctx.get("params") or {}).get("landing_dir") or None
    settings = load_settings(landing_dir=landing)
    reports = run_step(name, ds, settings)
    for asset in outlets_for(name):
        ctx["outlet_events"][asset].extra = event_extra(name, ds.isoformat(), reports, settings)
    return step_result(name, ds, reports)


def step_result(name: str, ds: date, reports: list[StepReport]) -> dict[str, Any]:
    """The XCom of a step task: totals, each report's counts, and every warning line."""
    warnings = [f"{r.step}: {line}" for r in reports for line in warnings_of(r)]
    return {
        "step": name, "ds": ds.isoformat(), "status": "warning" if warnings else "ok",
        "rows_in": sum(r.rows_in for r in reports),
        "rows_out": sum(r.rows_out for r in reports),
        "rows_quarantined": sum(r.rows_quarantined for r in reports),
        "seconds": round(sum(r.seconds for r in reports), 3),
        "warnings": warnings,
        "reports": [{"step": r.step, "rows_in": r.rows_in, "rows_out": r.rows_out,
                     "rows_quarantined": r.rows_quarantined, "status": r.status} for r in reports],
    }


def run_summary(steps: list[str]) -> dict[str, Any]:
    """Task `run_summary` (runs whatever happened upstream): one line per step, then the verdict.

    Fails when a step did not succeed, so the run's state stays honest (this task is the
    run's last); its own failure sends no alert: the failed step already sent one.
    """
    from airflow.sdk.exceptions import AirflowFailException

    ctx = _context()
    ti, run = ctx["ti"], ctx["dag_run"]
    results = ti.xcom_pull(task_ids=steps, key="return_value") or []
    by_step = {r["step"]: r for r in results if isinstance(r, dict) and "step" in r}
    states = _task_states(ti.dag_id, run.run_id, steps)
    summary = summarize(_ds(ctx).isoformat(), steps, by_step, states)
    for s in summary["steps"]:
        log_event(logger, "step_summary", logging.WARNING if s["warnings"] else logging.INFO,
                  step=s["step"], state=s["state"], rows_in=s["rows_in"], rows_out=s["rows_out"],
                  rows_quarantined=s["rows_quarantined"], seconds=s["seconds"],
                  warnings=len(s["warnings"]))
        for line in s["warnings"]:
            log_event(logger, "step_warning", logging.WARNING, step=s["step"], warning=line)
    log_event(logger, "run_summary", ds=summary["ds"], status=summary["status"],
              steps=len(steps), with_warnings=summary["with_warnings"], failed=summary["failed"])
    ti.xcom_push(key=SUMMARY_KEY, value=summary)  # also when failing: the notes read it
    if summary["failed"]:
        raise AirflowFailException(
            f"the run for {summary['ds']} did not complete: {', '.join(summary['failed'])} "
            "did not succeed (see their logs; fix, then clear them)")
    return summary


def summarize(ds: str, steps: list[str], results: dict[str, dict],
              states: dict[str, str]) -> dict[str, Any]:
    """Combine the steps' XComs and states into the run summary (pure, for the notes too)."""
    rows = []
    for step in steps:
        r = results.get(step) or {}
        state = states.get(step) or ("success" if r else "unknown")
        rows.append({"step": step, "state": state, "status": r.get("status", state),
                     "rows_in": r.get("rows_in", 0), "rows_out": r.get("rows_out", 0),
                     "rows_quarantined": r.get("rows_quarantined", 0),
                     "seconds": r.get("seconds", 0.0), "warnings": r.get("warnings", [])})
    failed = [r["step"] for r in rows if r["state"] not in ("success", "skipped")]
    with_warnings = [r["step"] for r in rows if r["warnings"]]
    status = "failed" if failed else ("warning" if with_warnings else "ok")
    return {"ds": ds, "status": status, "failed": failed, "with_warnings": with_warnings,
            "steps": rows}


def _task_states(dag_id: str, run_id: str, steps: list[str]) -> dict[str, str]:
    """The steps' states in this run (empty if Airflow cannot say: the XComs still tell)."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    try:
        found = RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=[run_id],
                                                    task_ids=steps)
    except Exception as e:  # an older/newer SDK shape: degrade to the XComs
        log_event(logger, "task_states_unavailable", logging.WARNING, error=str(e))
        return {}
    return {task: str(state) for task, state in (found.get(run_id) or {}).items()}


def run_retrain(force: bool) -> dict[str, Any]:
    """Task `train` of `personalization_retrain`: retrain the models as of the business day.

    Asset-triggered runs (a published export) take the day from the event; they retrain
    only when `scoring.training_needed` says so, and are skipped otherwise.
    """
    from personalization.config import load_settings
    from personalization.scoring import train
    from personalization.scoring.score import training_needed

    ctx = _context()
    ds = _ds(ctx)
    settings = load_settings()
    reason = training_needed(ds, settings)
    if not (force or reason):
        return _skip(ds, f"the models are recent enough (retrain_every_days="
                         f"{settings.retrain_every_days})")
    log_event(logger, "retrain", ds=ds.isoformat(), reason=reason or "forced")
    report = train(ds, settings)
    if report.status == "skipped":  # too little history: not an error, but nothing trained
        return _skip(ds, str(report.details.get("reason")))
    return step_result("train", ds, [report])


def _skip(ds: date, reason: str):
    """End the task as skipped, saying why in its log (Airflow logs only "Skipping task")."""
    from airflow.sdk.exceptions import AirflowSkipException

    log_event(logger, "retrain_skipped", ds=ds.isoformat(), reason=reason)
    raise AirflowSkipException(reason)


def _ds(ctx: Any) -> date:
    """The business day of this run: from the triggering export event, else its dates."""
    from personalization.orchestration.schedule import business_day

    events = ctx.get("triggering_asset_events") or {}
    for asset_events in events.values():
        days = [e.extra.get("ds") for e in asset_events if (e.extra or {}).get("ds")]
        if days:
            return date.fromisoformat(max(days))
    run = ctx["dag_run"]
    return business_day(run.logical_date, run.run_after)

"""Airflow 3 DAGs for the nightly email-personalization run (thin: logic lives in the package).

`personalization_nightly`: the three extracts in parallel, then the warehouse steps one
after another in `personalization.pipeline.STEPS` order (DuckDB has one writer).
`personalization_retrain`: weekly retraining of the VIP and churn models.

Every task calls one `personalization` function with the run's logical date and returns
counts, never data. Nothing here touches the disk or the settings at import time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from airflow.sdk import DAG, Param, dag, get_current_context, task

from personalization.pipeline import STEPS

DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=1),
}
# Longer budgets for the heavy steps; a failed quality gate is a verdict, not a glitch.
EXECUTION_TIMEOUT = {"build_marts": timedelta(hours=2), "build_segments": timedelta(hours=1),
                     "score": timedelta(hours=2), "sync": timedelta(hours=2)}
NO_RETRY = {"gate_lake", "gate_marts", "gate_segments"}
START_DATE = datetime(2026, 1, 1, tzinfo=UTC)
PARAMS = {
    "landing_dir": Param(None, type=["null", "string"],
                         description="Landing directory; overrides settings.landing_dir."),
}


def _logical_ds() -> tuple[date, str | None]:
    ctx = get_current_context()
    # The logical date is the business date of the run; never the wall clock.
    ds = date.fromisoformat(ctx["ds"])
    landing = (ctx.get("params") or {}).get("landing_dir")
    return ds, landing or None


def _run(name: str) -> dict:
    from personalization.config import load_settings
    from personalization.observability import configure_logging
    from personalization.pipeline import run_step

    configure_logging()
    ds, landing = _logical_ds()
    reports = run_step(name, ds, load_settings(landing_dir=landing))
    return {
        "step": name, "ds": ds.isoformat(),
        "rows_in": sum(r.rows_in for r in reports),
        "rows_out": sum(r.rows_out for r in reports),
        "rows_quarantined": sum(r.rows_quarantined for r in reports),
        "reports": [{"step": r.step, "rows_out": r.rows_out, "status": r.status} for r in reports],
    }


def _step_task(name: str):
    @task(task_id=name, retries=0 if name in NO_RETRY else DEFAULT_ARGS["retries"],
          execution_timeout=EXECUTION_TIMEOUT.get(name, DEFAULT_ARGS["execution_timeout"]))
    def step() -> dict:
        return _run(name)

    return step()


def make_nightly_dag(dag_id: str = "personalization_nightly",
                     steps: Sequence[str] | None = None) -> DAG:
    """Build the nightly DAG for `steps` (default: all of `pipeline.STEPS`).

    Extract steps run in parallel; every other step runs after all extracts and after the
    previous non-extract step, in `STEPS` order. Tests build it with the extracts only.
    """
    names = list(steps or STEPS)
    unknown = [n for n in names if n not in STEPS]
    if unknown:
        raise ValueError(f"unknown step(s) {unknown}; known: {list(STEPS)}")

    @dag(dag_id=dag_id, schedule="@daily", start_date=START_DATE, catchup=False,
         max_active_runs=1, default_args=DEFAULT_ARGS, params=PARAMS,
         tags=["personalization", "nightly", "elt"], doc_md=__doc__)
    def nightly():
        extracts = [_step_task(n) for n in names if n.startswith("extract_")]
        previous = extracts
        for name in (n for n in names if not n.startswith("extract_")):
            current = _step_task(name)
            if previous:
                previous >> current
            previous = current

    return nightly()


@dag(dag_id="personalization_retrain", schedule="@weekly", start_date=START_DATE,
     catchup=False, max_active_runs=1, default_args={**DEFAULT_ARGS, "retries": 1},
     tags=["personalization", "models"], doc_md="Weekly retraining of the VIP and churn models.")
def personalization_retrain():
    @task(execution_timeout=timedelta(hours=3))
    def train() -> dict:
        from personalization.config import load_settings
        from personalization.scoring import train as train_models

        ds, _ = _logical_ds()
        r = train_models(ds, load_settings())
        return {"step": r.step, "ds": r.ds, "rows_in": r.rows_in, "status": r.status}

    train()


nightly_dag = make_nightly_dag()
retrain_dag = personalization_retrain()

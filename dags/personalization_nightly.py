"""The nightly email-personalization run: one task per step of `personalization.pipeline.STEPS`.

Declarations only: what runs lives in `personalization.orchestration` (tested there), and
nothing here touches the disk or the settings when the file is parsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from airflow.sdk import DAG, Param, dag, task

from personalization.orchestration import WAREHOUSE_POOL
from personalization.orchestration.alerts import AlertNotifier, nightly_deadline
from personalization.orchestration.assets import outlets_for
from personalization.orchestration.docs import NIGHTLY_DOC, step_doc
from personalization.orchestration.schedule import START_DATE, nightly_timetable
from personalization.orchestration.tasks import (
    BUSINESS_DAY_TASK,
    SUMMARY_TASK,
    run_business_day,
    run_pipeline_step,
    run_summary,
)
from personalization.pipeline import STEPS, WAREHOUSE_FREE

DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=1),
    "on_failure_callback": AlertNotifier(),
    # Ahead of the retrain DAG when both wait for the warehouse pool.
    "priority_weight": 10,
    "weight_rule": "absolute",
}
# Longer budgets for the heavy steps; a failed quality gate is a verdict, not a glitch.
EXECUTION_TIMEOUT = {"build_marts": timedelta(hours=2), "build_segments": timedelta(hours=1),
                     "score": timedelta(hours=2), "sync": timedelta(hours=2)}
NO_RETRY = {"gate_lake", "gate_marts", "gate_segments"}
PARAMS = {
    "landing_dir": Param(None, type=["null", "string"],
                         description="Landing directory; overrides settings.landing_dir."),
}


def _step_task(name: str):
    @task(task_id=name, retries=0 if name in NO_RETRY else DEFAULT_ARGS["retries"],
          execution_timeout=EXECUTION_TIMEOUT.get(name, DEFAULT_ARGS["execution_timeout"]),
          pool=None if name in WAREHOUSE_FREE else WAREHOUSE_POOL,
          outlets=outlets_for(name), doc_md=step_doc(name))
    def step() -> dict:
        return run_pipeline_step(name)

    return step()


def make_nightly_dag(dag_id: str = "personalization_nightly",
                     steps: Sequence[str] | None = None) -> DAG:
    """Build the nightly DAG for `steps` (default: all of `pipeline.STEPS`).

    `business_day` first; extract steps in parallel; every other step after all extracts and
    after the previous non-extract step, in `STEPS` order; `run_summary` last, whatever happened.
    Tests build it with the extracts only.
    """
    names = list(steps or STEPS)
    unknown = [n for n in names if n not in STEPS]
    if unknown:
        raise ValueError(f"unknown step(s) {unknown}; known: {list(STEPS)}")

    @dag(dag_id=dag_id, schedule=nightly_timetable(), start_date=START_DATE, catchup=False,
         max_active_runs=1, default_args=DEFAULT_ARGS, params=PARAMS, deadline=nightly_deadline(),
         tags=["personalization", "nightly", "elt"], doc_md=NIGHTLY_DOC)
    def nightly():
        @task(task_id=BUSINESS_DAY_TASK, retries=0, doc_md=step_doc(BUSINESS_DAY_TASK))
        def business_day() -> str:
            return run_business_day()

        @task(task_id=SUMMARY_TASK, trigger_rule="all_done", retries=0,
              on_failure_callback=None, doc_md=step_doc(SUMMARY_TASK))
        def summary() -> dict:
            return run_summary(names)

        first = business_day()
        extracts = [_step_task(n) for n in names if n.startswith("extract_")]
        previous = extracts or [first]
        first >> extracts
        for name in (n for n in names if not n.startswith("extract_")):
            current = _step_task(name)
            previous >> current
            previous = [current]
        previous >> summary()

    return nightly()


nightly_dag = make_nightly_dag()

"""Airflow 3 DAG for behavioural triggers (thin: logic lives in `personalization.triggers`).

`personalization_triggers`: every five minutes, evaluate every rule under `triggers/` as of
the end of the run's data interval and send what is due, at most once per (trigger, person,
cart). For sends within a minute of the wait, run `personalization triggers run` as a
long-lived service instead; the two share one state file and must not run at the same time
(the second waits for the next tick). See docs/triggers.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, get_current_context, task

START_DATE = datetime(2026, 1, 1, tzinfo=UTC)


@dag(dag_id="personalization_triggers", schedule=timedelta(minutes=5), start_date=START_DATE,
     catchup=False, max_active_runs=1, dagrun_timeout=timedelta(minutes=10),
     default_args={"owner": "data-engineering", "retries": 1,
                   "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": True,
                   "execution_timeout": timedelta(minutes=4)},
     tags=["personalization", "triggers"], doc_md=__doc__)
def personalization_triggers():
    @task
    def evaluate_triggers() -> dict:
        from personalization.config import load_settings
        from personalization.triggers import run_once

        ctx = get_current_context()
        # As of the end of the interval this run stands for: a late or retried run decides
        # exactly what it would have decided on time.
        now = ctx["data_interval_end"].astimezone(UTC).replace(tzinfo=None)
        report = run_once(load_settings(), now=now)
        return {"now": now.isoformat(), "events_read": report.events_read,
                "deferred": report.deferred, "decisions": report.decisions}

    evaluate_triggers()


triggers_dag = personalization_triggers()

"""The nightly DAG factory under a real scheduler: `make airflow` (airflow standalone), as the
runbook says, with the extract steps only, so it fits the suite's time budget. The whole
nightly DAG under the scheduler is `benchmarks/airflow_scheduler.py` (minutes on 2 cores).

What it shows: unpausing creates exactly the run for yesterday (the last day that has ended,
none for today) and it goes green; `make airflow` made the one-slot warehouse pool; a second
trigger for the date is refused (409); our plugin's listener in the scheduler wrote the run
note and the warned task's note; the lake Asset events carry the day; the DAG's deadline was
registered; task logs hold each of our lines once and nothing at ERROR.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from personalization.orchestration import WAREHOUSE_POOL

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from benchmarks.airflow_standalone import Standalone  # noqa: E402

DAG_ID = "personalization_extract_only"
TASKS = {"business_day", "extract_crm", "extract_shop", "extract_pixel", "run_summary"}


@pytest.mark.slow
def test_the_scheduler_runs_yesterday_green_after_unpausing(dags_airflow_db, migrated_airflow_db,
                                                            tmp_path, write_landing):
    import shutil

    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    home, dags = tmp_path / "airflow", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    # The session's freshly migrated, unused metadata DB: `make airflow` still runs
    # `airflow db migrate` (then a no-op) and `pools set`, without migrating from scratch again.
    shutil.copyfile(migrated_airflow_db, home / "airflow.db")
    (dags / "extract_only.py").write_text((dags_airflow_db / "dags" / "extract_only.py").read_text())
    write_landing(tmp_path / "home" / "landing", str(yesterday), pixel=False)
    env = {**os.environ, "PERSONALIZATION_HOME": str(tmp_path / "home"),
           "PERSONALIZATION_REQUIRED_SOURCES": '["crm", "shop"]'}  # pixel skipped: a warning
    env.pop("PERSONALIZATION_NIGHTLY_DEADLINE_HOURS")  # the real scheduler handles deadlines
    airflow = Standalone(home, env, dags_folder=dags)
    try:
        airflow.wait_ready()
        assert airflow.api("GET", f"/pools/{WAREHOUSE_POOL}").json()["slots"] == 1
        airflow.unpause(DAG_ID)
        run = airflow.finished_run(DAG_ID, f"{yesterday}T00:00:00Z", timeout=300)
        tis = airflow.task_instances(DAG_ID, run["dag_run_id"])
        states = {ti["task_id"]: ti["state"] for ti in tis}
        assert run["state"] == "success" and states == dict.fromkeys(TASKS, "success"), (
            states, airflow.tail())
        assert [r["logical_date"][:10] for r in airflow.runs(DAG_ID)] == [str(yesterday)]

        again = airflow.api("POST", f"/dags/{DAG_ID}/dagRuns",
                            json={"logical_date": f"{yesterday}T00:00:00Z"})
        assert again.status_code == 409, again.text

        summary = airflow.xcom(DAG_ID, run["dag_run_id"], "run_summary")
        assert summary["ds"] == str(yesterday) and summary["with_warnings"] == ["extract_pixel"]
        assert run["note"].startswith(f"⚠ {yesterday}: 3 steps")
        notes = {ti["task_id"]: ti["note"] for ti in tis}
        assert "not delivered (source not required)" in notes["extract_pixel"]
        assert notes["extract_crm"] is None

        events = airflow.api("GET", "/assets/events", params={
            "source_dag_id": DAG_ID, "source_run_id": run["dag_run_id"]}).json()["asset_events"]
        assert sorted((e["name"], e["extra"]["ds"]) for e in events) == [
            (f"personalization_lake_{s}", str(yesterday)) for s in ("crm", "pixel", "shop")]

        for task in TASKS:
            records = airflow.task_log_records(DAG_ID, run["dag_run_id"], task)
            ours = [r["event"] for r in records
                    if str(r.get("logger", "")).startswith("personalization")]
            assert len(ours) == len(set(ours)), (task, ours)  # no line twice
            assert [r for r in records if r.get("level") in ("error", "critical")] == [], task
        crm_log = [r["event"] for r in airflow.task_log_records(DAG_ID, run["dag_run_id"],
                                                                "extract_crm")]
        assert any(e.startswith("step_done step=extract_crm.contacts") and "rows_in=2" in e
                   for e in crm_log)
        with sqlite3.connect(home / "airflow.db") as db:
            names = {row[0] for row in db.execute("select name from deadline_alert")}
        assert "nightly run late" in names
    finally:
        airflow.stop()

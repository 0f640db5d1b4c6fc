"""The whole nightly DAG under a real Airflow scheduler, as docs/operations.md runs it.

    python benchmarks/airflow_scheduler.py [--customers 300] [--days 5] [--work DIR] [--keep]

Generates landing files ending yesterday, loads all but the last day into the lake, starts
`make airflow` (standalone) on the repository's `dags/`, unpauses both DAGs and waits for the
scheduled run of yesterday. Checks what an operator would (all tasks green, no run for today,
409 on a second trigger, notes, Asset events, the export starting `personalization_retrain`)
and records how long each task took. Too slow for the test suite on 2 cores; the suite runs
the extract steps under the scheduler (tests/dags/test_scheduler.py).

Writes benchmarks/results/airflow/<date>-scheduler.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.airflow_standalone import Standalone, wait_for  # noqa: E402
from personalization.config import SOURCES, load_settings  # noqa: E402
from personalization.pipeline import date_range, run_step  # noqa: E402

NIGHTLY, RETRAIN = "personalization_nightly", "personalization_retrain"


def _seconds(ti: dict) -> float:
    start, end = (datetime.fromisoformat(ti[k]) for k in ("start_date", "end_date"))
    return round((end - start).total_seconds(), 1)


def run(work: Path, customers: int, days: int) -> dict:
    from personalization.generate import generate

    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    start = yesterday - timedelta(days=days - 1)
    settings = load_settings(home=work / "home")
    t0 = time.monotonic()
    generate(out=settings.landing_dir, customers=customers, days=days, seed=3, start=start,
             truth_path=work / "truth.parquet")
    for ds in date_range(start, yesterday - timedelta(days=1)):
        for source in SOURCES:
            run_step(f"extract_{source}", ds, settings)
    prepared = time.monotonic() - t0

    home = work / "airflow"
    home.mkdir()
    airflow = Standalone(home, {**os.environ, "PERSONALIZATION_HOME": str(settings.home)})
    try:
        ready = airflow.wait_ready()
        for dag_id in (NIGHTLY, RETRAIN):
            airflow.unpause(dag_id)
        t1 = time.monotonic()
        nightly = airflow.finished_run(NIGHTLY, f"{yesterday}T00:00:00Z", timeout=3600)
        run_seconds = time.monotonic() - t1
        run_id = nightly["dag_run_id"]
        tis = airflow.task_instances(NIGHTLY, run_id)
        again = airflow.api("POST", f"/dags/{NIGHTLY}/dagRuns",
                            json={"logical_date": f"{yesterday}T00:00:00Z"})
        events = airflow.api("GET", "/assets/events", params={
            "source_dag_id": NIGHTLY, "source_run_id": run_id, "limit": 50}).json()
        summary = airflow.xcom(NIGHTLY, run_id, "run_summary")

        def retrain_done():
            runs = airflow.runs(RETRAIN)
            return runs if runs and runs[0]["state"] in ("success", "failed") else None

        retrain = wait_for("the export to start the retrain DAG", retrain_done, 600, 5)[0]
        retrain_tis = airflow.task_instances(RETRAIN, retrain["dag_run_id"])
        checks = {
            "run_green": nightly["state"] == "success"
            and all(ti["state"] == "success" for ti in tis),
            "only_yesterday": [r["logical_date"][:10] for r in airflow.runs(NIGHTLY)]
            == [str(yesterday)],
            "second_trigger_409": again.status_code == 409,
            "run_note": (nightly.get("note") or "").startswith(("✓ ", "⚠ ")),
            "task_notes_match_warnings": all(
                (ti["note"] is not None) == bool(s["warnings"])
                for s in summary["steps"] for ti in tis if ti["task_id"] == s["step"]),
            "asset_events": sorted(e["extra"]["step"] for e in events["asset_events"])
            == sorted(["extract_crm", "extract_shop", "extract_pixel", "build_marts",
                       "build_segments", "export"]),
            "retrain_asset_triggered": retrain["run_type"] == "asset_triggered"
            and retrain["state"] == "success",
        }
        return {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "ds": str(yesterday), "customers": customers, "days": days,
            "load_average": os.getloadavg(), "cpus": os.cpu_count(),
            "seconds": {"prepare_data": round(prepared, 1), "standalone_ready": round(ready, 1),
                        "unpause_to_run_finished": round(run_seconds, 1)},
            "tasks": {ti["task_id"]: {"state": ti["state"], "seconds": _seconds(ti),
                                      "pool": ti["pool"]} for ti in tis},
            "retrain": {ti["task_id"]: ti["state"] for ti in retrain_tis},
            "run_note": nightly.get("note"),
            "warnings": {s["step"]: s["warnings"] for s in summary["steps"] if s["warnings"]},
            "checks": checks,
        }
    finally:
        airflow.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="airflow-scheduler-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = run(work, args.customers, args.days)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    out = REPO / "benchmarks" / "results" / "airflow" / f"{result['date'][:10]}-scheduler.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if all(result["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

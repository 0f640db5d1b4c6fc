"""DuckDB vs Spark local mode on the same lake: the marts and segments builds, timed.

    python benchmarks/spark.py --scale 100000 [--days 14] [--work DIR] [--keep]

Generates `scale` customers, extracts every day once, then builds the last night's marts and
segments with DuckDB (with scoring, whose scores Spark reuses) and with Spark on one local
session (master from PERSONALIZATION_SPARK_MASTER, default local[2]). dbt's data tests run
on DuckDB only, so both sides time the same models. Writes
benchmarks/results/spark-<scale>-<date>.json (with the machine's load average: the figures
mean little on a busy machine). docs/scale_out.md extrapolates them to 50M people.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from personalization.config import SOURCES, load_settings  # noqa: E402
from personalization.generate import generate  # noqa: E402
from personalization.pipeline import date_range, run_step  # noqa: E402

START = date(2026, 9, 1)


def _timed(steps: list[str], ds: date, settings) -> dict[str, float]:
    seconds = {}
    for step in steps:
        started = time.perf_counter()
        run_step(step, ds, settings)
        seconds[step] = round(time.perf_counter() - started, 1)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix=f"spark-bench-{args.scale}-"))
    last = START + timedelta(days=args.days - 1)
    duck = load_settings(home=work / "duckdb", dbt_tests=False)
    result: dict = {"scale": args.scale, "days": args.days, "ds": last.isoformat(),
                    "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                    "load_before": os.getloadavg()}
    started = time.perf_counter()
    generate(out=duck.landing_dir, customers=args.scale, days=args.days, seed=7, start=START,
             truth_path=work / "truth.parquet")
    for ds in date_range(START, last):
        for source in SOURCES:
            run_step(f"extract_{source}", ds, duck)
    result["generate_extract_seconds"] = round(time.perf_counter() - started, 1)
    result["duckdb"] = _timed(["build_marts", "score", "build_segments"], last, duck)
    spark = load_settings(home=work / "spark", lake_dir=duck.lake_dir, scores_dir=duck.scores_dir,
                          models_dir=duck.models_dir, engine="spark", dbt_tests=False)
    started = time.perf_counter()
    from personalization.warehouse.spark import session

    session(spark)
    result["spark_session_seconds"] = round(time.perf_counter() - started, 1)
    result["spark"] = _timed(["build_marts", "build_segments"], last, spark)
    result["spark_master"] = spark.spark_master
    result["load_after"] = os.getloadavg()
    out = REPO / "benchmarks" / "results" / f"spark-{args.scale}-{date.today().isoformat()}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not args.keep and args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

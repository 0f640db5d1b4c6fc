"""DuckDB vs Spark local mode on the same lake: the marts and segments builds, timed.

    python benchmarks/spark.py --scale 100000 [--days 14] [--work DIR] [--keep]
    python benchmarks/spark.py --duckdb-home /work/bench/1000000/home --driver-memory 14g \
        --shuffle-partitions 16              # the Spark side on a home the harness left

Generates `scale` customers, extracts every day once, then builds the last night's marts and
segments with DuckDB (with scoring, whose scores Spark reuses) and with Spark on one local
session (master from PERSONALIZATION_SPARK_MASTER, default local[2]). With `--duckdb-home`
it takes the lake, scores and models of a DuckDB home that already ran its last night
(`benchmarks/run.py --keep`; that run's result file has the DuckDB timings) and times only
the Spark side. dbt's data tests run on DuckDB only, so both sides time the same models.
Per-model seconds come from dbt's run_results.json. Writes
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

from benchmarks.memory import PeakSampler, measured  # noqa: E402
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
    parser.add_argument("--duckdb-home", type=Path, default=None,
                        help="reuse this DuckDB home's lake, scores and models (Spark side only)")
    parser.add_argument("--driver-memory", default=None, help="Spark driver heap, e.g. 14g")
    parser.add_argument("--shuffle-partitions", type=int, default=None)
    args = parser.parse_args()
    spark_options = {k: v for k, v in (("spark_driver_memory", args.driver_memory),
                                       ("spark_shuffle_partitions", args.shuffle_partitions))
                     if v is not None}
    if args.duckdb_home:
        _spark_only(args, spark_options)
        return
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
    result.update(_spark_side(duck, work / "spark", last, spark_options))
    _write(result, args.scale)
    if not args.keep and args.work is None:
        shutil.rmtree(work, ignore_errors=True)


def _spark_side(duck, spark_home: Path, ds: date, options: dict) -> dict:
    """Build `ds`'s marts and segments with Spark on `duck`'s lake, scores and models."""
    spark = load_settings(home=spark_home, lake_dir=duck.lake_dir, scores_dir=duck.scores_dir,
                          models_dir=duck.models_dir, engine="spark", dbt_tests=False, **options)
    result: dict = {"spark_master": spark.spark_master,
                    "spark_driver_memory": spark.spark_driver_memory,
                    "spark_shuffle_partitions": spark.spark_shuffle_partitions}
    started = time.perf_counter()
    from personalization.warehouse.spark import session

    session(spark)
    result["spark_session_seconds"] = round(time.perf_counter() - started, 1)
    result["spark"], result["spark_models"] = {}, {}
    sampler = PeakSampler().start()
    try:
        for step in ["build_marts", "build_segments"]:
            with measured(sampler, result["spark"], step):  # CPU includes the JVM's
                run_step(step, ds, spark)
            result["spark_models"][step] = _model_seconds(spark)
    finally:
        sampler.stop()
    result["load_after"] = os.getloadavg()
    return result


def _model_seconds(settings) -> dict[str, float]:
    path = settings.dbt_target_dir / "run_results.json"
    if not path.exists():
        return {}
    return {r["unique_id"].split(".")[-1]: round(r.get("execution_time", 0.0), 1)
            for r in json.loads(path.read_text())["results"]}


def _spark_only(args, options: dict) -> None:
    duck = load_settings(home=args.duckdb_home, dbt_tests=False)
    days = sorted(p.name for p in (Path(duck.scores_dir)).glob("ds=*"))
    if not days:
        sys.exit(f"{duck.scores_dir} has no scores: run that home's night first (benchmarks/run.py --keep)")
    last = date.fromisoformat(days[-1].removeprefix("ds="))
    import duckdb

    with duckdb.connect(str(duck.warehouse_path), read_only=True) as con:
        persons = con.execute("select count(*) from customer_profiles").fetchone()[0]
    result: dict = {"scale": args.scale, "duckdb_home": str(args.duckdb_home), "ds": last.isoformat(),
                    "persons": persons,
                    "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                    "load_before": os.getloadavg()}
    spark_home = args.work or args.duckdb_home.parent / "spark_home"
    result.update(_spark_side(duck, spark_home, last, options))
    _write(result, args.scale)


def _write(result: dict, scale: int) -> None:
    out = REPO / "benchmarks" / "results" / f"spark-{scale}-{date.today().isoformat()}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

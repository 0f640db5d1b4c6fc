"""Benchmark harness: generate data at a scale, run the nightly pipeline, time and measure
every step, then an incremental day and a rerun, then the reference implementations.

    python benchmarks/run.py --scale 100000 [--days 30] [--work DIR] [--keep]
    python benchmarks/run.py --scale 1000000 --skip-pandas   # also 3000000 and 5000000 (SCALES)

Every step records wall seconds, CPU seconds, the mean load average and its share of the
machine (benchmarks/memory.py): other jobs share the machine, so compare shares (an
incremental night as a share of the full run) and CPU seconds, not only wall seconds.

Writes benchmarks/results/<date>-<scale>.json; `python benchmarks/report.py` turns all results
into docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.memory import PeakSampler, measured  # noqa: E402
from benchmarks.references import same_results  # noqa: E402
from personalization.config import SOURCES, load_settings  # noqa: E402
from personalization.pipeline import date_range, run_step  # noqa: E402

START = date(2026, 9, 1)
SCALES = (10_000, 100_000, 1_000_000, 3_000_000, 5_000_000)  # the scales docs/performance.md reports
# The warehouse steps of a night, in the pipeline's order. The erasure steps cost nothing on a
# night without requests and rewrite every copy holding the person on a night with some.
NIGHTLY = ["gate_lake", "erase_arrivals", "build_marts", "gate_marts", "score", "build_segments",
           "gate_segments", "export", "erase", "sync"]
# Steps no later step of the harness reads from, so a run may leave them out (`--skip`).
SKIPPABLE = ("erase_arrivals", "erase", "sync")


def _dbt_model_seconds(settings) -> dict[str, float]:
    path = settings.dbt_target_dir / "run_results.json"
    if not path.exists():
        return {}
    results = json.loads(path.read_text())["results"]
    return {r["unique_id"].split(".")[-1]: r.get("execution_time", 0.0) for r in results
            if r["unique_id"].startswith("model.")}


class StepFailed(Exception):
    """A step of the harness's nights failed: the results so far are saved with `record`."""

    def __init__(self, record: dict):
        super().__init__(f"{record['step']} {record['ds']}: {record['error']}")
        self.record = record


def _run_night(ds: date, settings, sampler, steps: dict, extract_dates: list[date],
               skip: frozenset[str] = frozenset()) -> None:
    """Extract `extract_dates` (one timing per source) then every warehouse step for `ds`
    but those in `skip`. A failing step raises StepFailed."""
    def step(name: str, day: date) -> None:
        try:
            run_step(name, day, settings)
        except Exception as e:
            raise StepFailed({"step": name, "ds": day.isoformat(),
                              "error": f"{type(e).__name__}: {e}"}) from e

    for source in SOURCES:
        with measured(sampler, steps, f"extract_{source}"):
            for d in extract_dates:
                step(f"extract_{source}", d)
    for name in NIGHTLY:
        if name in skip:
            continue
        with measured(sampler, steps, name):
            step(name, ds)
        if name == "build_marts":
            models = _dbt_model_seconds(settings)
            steps["identity"] = {"seconds": round(sum(v for k, v in models.items()
                                                      if "identity" in k), 2),
                                 "note": "part of build_marts (dbt execution time of identity models)"}


def _reference(kind: str, lake: Path, ds: date, cap_mib: int | None) -> dict:
    """Run one reference in a fresh process; its peak RSS is sampled from here (ru_maxrss of a
    child started by fork/exec can report the parent's size)."""
    import psutil

    cmd = [sys.executable, "-m", "benchmarks.reference_main", kind, str(lake), ds.isoformat()]
    if cap_mib:
        cmd.append(str(cap_mib))
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, child.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(0.05)
    out, err = proc.communicate()
    if proc.returncode != 0:
        return {"kind": kind, "status": f"failed: {err.strip().splitlines()[-1:]}",
                "peak_rss_mib": round(peak / 2**20, 1)}
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mib"] = round(peak / 2**20, 1)
    return result


def _identity_snapshot(settings, path: Path) -> None:
    import duckdb

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        con.execute(f"COPY (SELECT source, source_id, unified_id FROM identity_map) TO '{path}'")


def _stability(settings, before: Path, truth: Path | None = None) -> dict:
    """Share of persons that existed before the new day and kept their unified_id: all of
    them, and those known by a CRM contact or shop account (not only by a cookie). A profile
    absorbed by a merge counts as not kept, also when it was a duplicate of the profile that
    absorbed it. With the ground truth, also per real person known by CRM or shop: whether
    their main id (the one holding most of their CRM/shop records before) still holds every
    record it held, so merging a duplicate into it keeps it."""
    import duckdb

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        row = con.execute(f"""
            WITH old AS (SELECT * FROM read_parquet('{before}')),
                 per_person AS (
                     SELECT old.unified_id,
                            bool_and(new.unified_id = old.unified_id) AS kept,
                            bool_or(old.source IN ('crm', 'shop')) AS known
                     FROM old JOIN identity_map AS new USING (source, source_id)
                     GROUP BY old.unified_id)
            SELECT count(*) FILTER (WHERE kept), count(*),
                   count(*) FILTER (WHERE kept AND known), count(*) FILTER (WHERE known)
            FROM per_person""").fetchone()
        real = None if truth is None else con.execute(f"""
            WITH records AS (
                     SELECT t.person_id, old.unified_id AS old_id, new.unified_id AS new_id
                     FROM read_parquet('{before}') AS old
                     JOIN read_parquet('{truth}') AS t USING (source, source_id)
                     LEFT JOIN identity_map AS new USING (source, source_id)
                     WHERE old.source IN ('crm', 'shop')),
                 main AS (
                     SELECT person_id, old_id FROM records
                     GROUP BY person_id, old_id
                     QUALIFY row_number() OVER (PARTITION BY person_id
                                                ORDER BY count(*) DESC, old_id) = 1)
            SELECT count(*) FILTER (WHERE kept), count(*)
            FROM (SELECT main.person_id, bool_and(records.new_id IS NOT DISTINCT FROM main.old_id) AS kept
                  FROM main JOIN records USING (person_id, old_id)
                  GROUP BY main.person_id)""").fetchone()
    kept, persons, kept_known, known = row
    out = {"persons_before": persons, "kept_id": kept,
           "share_kept": round(kept / persons, 5) if persons else None,
           "known_persons_before": known,
           "share_known_kept": round(kept_known / known, 5) if known else None}
    if real is not None:
        out.update({"real_persons_known_before": real[1], "real_persons_main_id_kept": real[0],
                    "share_real_main_id_kept": round(real[0] / real[1], 5) if real[1] else None})
    return out


def _load_log_balance(settings) -> dict:
    """Every load-log row of the lake (one per extracted table and day): rows_in must equal
    rows_loaded + rows_quarantined (the extract fails a file otherwise; this re-checks what
    the run left). Totals, and the rows that do not add up."""
    import duckdb

    from personalization.privacy.encryption import parquet_read_options

    files = sorted((settings.lake_dir / "load_log").glob("*/*/ds=*/*.parquet"))
    if not files:
        return {"load_log_rows": 0}
    with duckdb.connect() as con:
        row = con.execute(
            "SELECT count(*), sum(rows_in), sum(rows_loaded), sum(rows_quarantined), "
            "count(*) FILTER (WHERE rows_in IS DISTINCT FROM rows_loaded + rows_quarantined) "
            f"FROM read_parquet(?{parquet_read_options(settings)})",
            [[str(f) for f in files]]).fetchone()
    return {"load_log_rows": row[0], "rows_in": int(row[1] or 0), "rows_loaded": int(row[2] or 0),
            "rows_quarantined": int(row[3] or 0), "rows_not_adding_up": row[4]}


def _outcomes(settings, truth: Path, ds: date) -> dict:
    """What the run produced: identity quality, segment sizes, model metrics."""
    out: dict = {}
    if truth.exists():
        from personalization.warehouse.evaluate import evaluate

        result = evaluate(truth, settings)
        out["identity"] = {k: result[k] for k in result if k in ("precision", "recall", "f1", "scopes")}
    manifest = settings.exports_dir / ds.isoformat() / "manifest.json"
    if manifest.exists():
        out["segments"] = {s["name"]: s["rows"] for s in json.loads(manifest.read_text())["segments"]}
    models = {}
    for meta in sorted(settings.models_dir.glob("*/*/metadata.json")):
        data = json.loads(meta.read_text())
        models[meta.parent.parent.name] = {k: data.get(k) for k in
                                           ("version", "approved", "metrics", "baselines",
                                            "evaluation", "fit_seconds")}
    out["models"] = models
    return out


def _rewritten_since(landing: Path, record: Path) -> int:
    """How many landing files changed after the generation wrote `record`."""
    written = record.stat().st_mtime
    return sum(1 for p in landing.rglob("*") if p.is_file() and p.stat().st_mtime > written)


def _results_path(scale: int) -> Path:
    """`<date>-<scale>.json`, or `<date>-<scale>-r<n>.json` for the day's n-th run at that
    scale: a second run on one day keeps the first one's file (report.py takes the last)."""
    stem = REPO / "benchmarks" / "results" / f"{date.today().isoformat()}-{scale}"
    path, n = stem.with_name(stem.name + ".json"), 1
    while path.exists():
        n += 1
        path = stem.with_name(f"{stem.name}-r{n}.json")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, required=True, help="customers (persons) to generate")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--work", type=Path, default=None, help="working folder (default benchmarks/work/<scale>)")
    ap.add_argument("--reuse-data", action="store_true", help="skip generation if the landing data exists")
    ap.add_argument("--landing", type=Path, default=None,
                    help="use this existing landing folder (its last day is the incremental day)")
    ap.add_argument("--start", type=date.fromisoformat, default=START, help="first landing date")
    ap.add_argument("--pandas-cap-mib", type=int, default=None,
                    help="address-space cap for the pandas reference (shows where it runs out)")
    ap.add_argument("--skip-pandas", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the working folder afterwards")
    ap.add_argument("--skip", action="append", default=[], choices=SKIPPABLE,
                    help="leave a nightly step out of every night (e.g. `erase`, whose copy of "
                         "the warehouse needs as much free disk as the warehouse itself); "
                         "recorded in the results")
    args = ap.parse_args()
    skip = frozenset(args.skip)

    work = args.work or REPO / "benchmarks" / "work" / str(args.scale)
    home = work / "home"
    landing = args.landing or work / "landing"
    if home.exists():
        shutil.rmtree(home)
    os.environ["PERSONALIZATION_HOME"] = str(home)
    settings = load_settings(home=home, landing_dir=landing)
    sampler = PeakSampler().start()
    results: dict = {"scale": args.scale, "days": args.days, "machine": {
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]}, "steps": {},
        "skipped_steps": sorted(skip)}

    if args.landing:  # `--days` counts the days in that folder; the last one is held back
        dates = date_range(args.start, args.start + timedelta(days=args.days - 2))
    else:
        dates = date_range(args.start, args.start + timedelta(days=args.days - 1))
    extra = dates[-1] + timedelta(days=1)
    out = _results_path(args.scale)
    gen_record = work / "generate.json"  # the generation's timing, kept for --reuse-data runs
    truth = work / "truth.parquet"  # the generator's ground truth (none with --landing)
    reuse = args.reuse_data and landing.exists() and gen_record.exists()
    if reuse and (changed := _rewritten_since(landing, gen_record)):
        # The pipeline owns its landing copy: the last run's erasures blanked lines in place,
        # so this run would find the erased persons gone and measure an erasure with no work.
        print(f"not reusing {landing}: {changed} file(s) rewritten since generation "
              "(erasure by the last run); generating again", flush=True)
        reuse = False
    if reuse:
        results.update(json.loads(gen_record.read_text()))
    if not (args.landing or reuse):
        from personalization.generate import generate

        shutil.rmtree(landing, ignore_errors=True)
        with measured(sampler, results, "generate"):
            results["generated"] = generate(out=landing, customers=args.scale, days=args.days + 1,
                                            seed=1, start=args.start,
                                            truth_path=truth)
        results["generate"]["load_avg_at_end"] = round(os.getloadavg()[0], 2)
        gen_record.write_text(json.dumps({k: results[k] for k in ("generated", "generate")}, indent=2))

    full = _night(results, "full_run", out, dates[-1], settings, sampler, dates, skip)
    results["full_run"] = _summary(full, 0)
    del results["full_run"]["share_of_full_run"], results["full_run"]["cpu_share_of_full_run"]
    full_total, full_cpu = results["full_run"]["seconds"], results["full_run"]["cpu_seconds"]
    _save(results, out)  # partial results survive a run stopped later

    results["outcomes"] = _outcomes(settings, truth, dates[-1])
    snapshot = work / "identity_before.parquet"
    _identity_snapshot(settings, snapshot)

    # References on exactly the lake the full run used (before the extra day lands).
    refs = {"duckdb": _reference("duckdb", settings.lake_dir, dates[-1], None)}
    if not args.skip_pandas:
        refs["pandas"] = _reference("pandas", settings.lake_dir, dates[-1], args.pandas_cap_mib)
    if refs.get("pandas", {}).get("status") == "ok":
        refs["pandas_vs_duckdb_differences"] = same_results(refs["duckdb"]["result"],
                                                            refs["pandas"]["result"])
    results["references"] = refs
    _save(results, out)
    results["ratios"] = {
        "pipeline_build_marts_vs_bare_duckdb": _ratio(full["build_marts"]["seconds"],
                                                      refs["duckdb"].get("seconds")),
        "pipeline_marts_plus_segments_vs_bare_duckdb": _ratio(
            full["build_marts"]["seconds"] + full["build_segments"]["seconds"],
            refs["duckdb"].get("seconds")),
        "pandas_vs_bare_duckdb": _ratio(refs.get("pandas", {}).get("seconds"),
                                        refs["duckdb"].get("seconds")),
    }

    incremental = _night(results, "incremental_run", out, extra, settings, sampler, [extra], skip)
    results["incremental_run"] = _summary(incremental, full_total, full_cpu)
    results["outcomes"]["identity_stability_after_one_day"] = _stability(
        settings, snapshot, truth if truth.exists() else None)
    _save(results, out)
    rerun = _night(results, "rerun_same_day", out, extra, settings, sampler, [extra], skip)
    results["rerun_same_day"] = _summary(rerun, full_total, full_cpu)
    results["outcomes"]["load_log"] = _load_log_balance(settings)
    sampler.stop()
    results["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]

    results["complete"] = True
    _save(results, out)
    print(json.dumps({k: results[k] for k in ("full_run", "incremental_run", "ratios", "outcomes")}, indent=2,
                     default=str))
    print(f"results: {out}")
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)


def _night(results: dict, key: str, out: Path, ds: date, settings, sampler,
           extract_dates: list[date], skip: frozenset[str]) -> dict:
    """One night's steps; when a step fails, the results so far are saved (this night's
    finished steps and the error under `results[key]`) and the run stops."""
    steps: dict = {}
    try:
        _run_night(ds, settings, sampler, steps, extract_dates, skip)
    except StepFailed as e:
        results[key] = {"failed": e.record, "steps": steps}
        _save(results, out)
        raise SystemExit(f"stopped: {e}\nresults so far: {out}") from e
    return steps


def _save(results: dict, out: Path) -> None:
    results.setdefault("complete", False)
    out.write_text(json.dumps(results, indent=2, default=str))


def _summary(steps: dict, full_total: float, full_cpu: float | None = None) -> dict:
    timed = [v for k, v in steps.items() if k != "identity"]
    total = sum(v["seconds"] for v in timed)
    cpu = sum(v.get("cpu_seconds", 0) for v in timed)
    return {"steps": steps, "seconds": round(total, 2), "cpu_seconds": round(cpu, 2),
            "load_avg": round(sum(v.get("load_avg") or 0 for v in timed) / len(timed), 2),
            "share_of_full_run": round(total / full_total, 3) if full_total else None,
            "cpu_share_of_full_run": round(cpu / full_cpu, 3) if full_cpu else None,
            "peak_rss_mib": max(v["peak_rss_mib"] for v in steps.values() if "peak_rss_mib" in v)}


def _ratio(a, b):
    return round(a / b, 2) if a and b else None


if __name__ == "__main__":
    main()

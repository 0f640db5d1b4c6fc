"""Where `build_marts` goes on a full night and on the incremental night after it, per dbt node.

    python benchmarks/marts_nights.py --customers 50000 [--days 15] [--label before] [--work DIR]

Generates `days + 1` deliveries (`personalization generate`; kept in the working folder and
reused), extracts them once into a shared lake (kept too: staging never reads a partition
after the night's `ds`), then, in a fresh warehouse, runs `build_marts` for day `days` (the
full night, every incremental model built from scratch) and for day `days + 1` (the
incremental night). Per night: wall and CPU seconds of the step (dbt and DuckDB run in this
process), the mean load average, and per dbt node (models *and* data tests) dbt's
execution time and the CPU seconds of its execution window. Run it twice on the same data,
once per code version (`--label before`, `--label after`), back to back: the machine is
shared, so compare CPU seconds. Writes
benchmarks/results/nightly-marts-<customers>-<date>-<label>.json. One run at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.identity_nights import _CpuSampler  # noqa: E402
from benchmarks.memory import PeakSampler, measured  # noqa: E402
from personalization.config import SOURCES, load_settings  # noqa: E402
from personalization.pipeline import date_range, run_step  # noqa: E402

START = date(2026, 9, 1)


def _nodes(settings, sampler: _CpuSampler) -> list[dict]:
    """Every node of the last dbt call: kind, name, dbt's execution seconds, CPU seconds."""
    results = json.loads((settings.dbt_target_dir / "run_results.json").read_text())["results"]
    nodes = []
    for r in results:
        parts = r["unique_id"].split(".")  # a data test's id ends in a hash, a unit test's in its name
        kind, name = parts[0], parts[-1] if parts[0] == "unit_test" else parts[2]
        window = [t for t in r.get("timing", []) if t["name"] == "execute"]
        cpu = None
        if window and window[0].get("started_at"):
            start, end = (datetime.fromisoformat(window[0][k].replace("Z", "+00:00")).timestamp()
                          for k in ("started_at", "completed_at"))
            cpu = round(sampler.cpu_at(end) - sampler.cpu_at(start), 2)
        nodes.append({"kind": kind, "name": name, "status": r["status"],
                      "seconds": round(r["execution_time"], 3), "cpu_seconds": cpu})
    return sorted(nodes, key=lambda n: -n["seconds"])


def _night(ds: date, settings, peak: PeakSampler) -> dict:
    record: dict = {}
    with _CpuSampler() as sampler, measured(peak, record, "build_marts"):
        run_step("build_marts", ds, settings)
    nodes = _nodes(settings, sampler)
    summary = record["build_marts"]
    for kind in ("model", "test"):
        mine = [n for n in nodes if n["kind"] == kind]
        summary[f"{kind}s"] = len(mine)
        summary[f"{kind}_seconds"] = round(sum(n["seconds"] for n in mine), 2)
        summary[f"{kind}_cpu_seconds"] = round(sum(n["cpu_seconds"] or 0 for n in mine), 2)
    identity = [n for n in nodes if n["kind"] == "model" and "identity" in n["name"]]
    summary["identity_model_seconds"] = round(sum(n["seconds"] for n in identity), 2)
    summary["identity_model_cpu_seconds"] = round(sum(n["cpu_seconds"] or 0 for n in identity), 2)
    return {"ds": ds.isoformat(), **summary, "nodes": nodes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=50_000)
    ap.add_argument("--days", type=int, default=15, help="deliveries of the full night (one more follows)")
    ap.add_argument("--label", default="run")
    ap.add_argument("--work", type=Path, default=None, help="default benchmarks/work/marts-<customers>")
    ap.add_argument("--full-night-home", type=Path, default=None,
                    help="a copy of the home after the full night: made by the first run, reused (copied) by "
                         "later ones, which then time only the incremental night, so code versions "
                         "alternate on the same state")
    ap.add_argument("--project-dir", type=Path, default=None,
                    help="another checkout's dbt project (e.g. `git archive` of the commit before)")
    args = ap.parse_args()

    work = args.work or REPO / "benchmarks" / "work" / f"marts-{args.customers}"
    landing, lake, home = work / "landing", work / "lake", work / "home"
    dates = date_range(START, START + timedelta(days=args.days))
    peak = PeakSampler().start()
    results: dict = {"customers": args.customers, "days": args.days, "label": args.label,
                     "cpus": os.cpu_count(), "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]}

    if not (work / "extracted.json").exists():
        from personalization.generate import generate

        shutil.rmtree(work, ignore_errors=True)
        prep: dict = {}
        with measured(peak, prep, "generate"):
            prep["generated"] = generate(out=landing, customers=args.customers, days=args.days + 1,
                                         seed=1, start=START, truth_path=work / "truth.parquet")
        extract_settings = load_settings(home=work / "extract_home", landing_dir=landing, lake_dir=lake)
        with measured(peak, prep, "extract"):
            for source in SOURCES:
                for d in dates:
                    run_step(f"extract_{source}", d, extract_settings)
        (work / "extracted.json").write_text(json.dumps(prep, indent=2, default=str))
    results["data"] = json.loads((work / "extracted.json").read_text())

    shutil.rmtree(home, ignore_errors=True)
    os.environ["PERSONALIZATION_HOME"] = str(home)
    overrides = {"project_dir": args.project_dir.resolve()} if args.project_dir else {}
    settings = load_settings(home=home, landing_dir=landing, lake_dir=lake, **overrides)
    results["project_dir"] = str(settings.project_dir)
    if args.full_night_home and args.full_night_home.exists():
        shutil.copytree(args.full_night_home, home)
        results["full_night"] = {"ds": dates[-2].isoformat(), "copied_from": str(args.full_night_home)}
    else:
        results["full_night"] = _night(dates[-2], settings, peak)
        if args.full_night_home:
            shutil.copytree(home, args.full_night_home)
    results["incremental_night"] = _night(dates[-1], settings, peak)
    peak.stop()
    results["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]

    out = REPO / "benchmarks" / "results" / f"nightly-marts-{args.customers}-{date.today()}-{args.label}.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    for night in ("full_night", "incremental_night"):
        r = results[night]
        if "copied_from" in r:
            continue
        print(f"{night} {r['ds']}: {r['seconds']} s, {r['cpu_seconds']} CPU s, load {r['load_avg']}; "
              f"models {r['model_seconds']} s, tests {r['test_seconds']} s "
              f"({r['tests']} tests), identity {r['identity_model_seconds']} s")
    print("top 15 nodes of the incremental night (seconds, CPU s):")
    for n in results["incremental_night"]["nodes"][:15]:
        print(f"  {n['seconds']:8.2f} {n['cpu_seconds']!s:>8} {n['kind']:5} {n['name']}")
    print(f"results: {out}")


if __name__ == "__main__":
    main()

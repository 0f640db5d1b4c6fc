"""Time a few nights at a scale without a month of history: a backfill, a full night, then
incremental nights, each step and each dbt node measured.

    python benchmarks/home_nights.py --home DIR [--landing L] [--lake K] \
        --extract-only 2026-09-01 --ds 2026-09-02 --ds 2026-09-03 --ds 2026-09-04 \
        [--skip erase] [--label 1m] [--truth truth.parquet]

`--extract-only` dates are only extracted (the backfill). For each `--ds`: extract that
date's deliveries, then run the nightly warehouse steps of `benchmarks/run.py` in order, each
timed (wall, CPU of this process and its children, peak RSS, load), `build_marts` per dbt
node (benchmarks/marts_nights.py), and the share of persons known before the night who kept
their `unified_id`. On an empty home the first night is the full build. A month of history
at 1M takes an hour to generate and extract; a backfill plus three days (`personalization
generate --days 4`) gives a full night and two incremental ones, the second of them steady
(the first incremental night after a full build rewrites some state once). Homes are changed
in place. Writes benchmarks/results/home-nights-<label>-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.marts_nights import _night  # noqa: E402
from benchmarks.memory import PeakSampler, measured  # noqa: E402
from benchmarks.run import NIGHTLY, _identity_snapshot, _outcomes, _stability, _summary  # noqa: E402
from personalization.config import SOURCES, load_settings  # noqa: E402
from personalization.pipeline import run_step  # noqa: E402


def _one_night(ds: date, settings, peak: PeakSampler, skip: set[str], snapshot: Path,
               truth: Path | None = None) -> dict:
    steps: dict = {}
    for source in SOURCES:
        with measured(peak, steps, f"extract_{source}"):
            run_step(f"extract_{source}", ds, settings)
    first = not settings.warehouse_path.exists()  # an empty home: this night is a full build
    if not first:
        _identity_snapshot(settings, snapshot)
    marts: dict = {}
    for name in NIGHTLY:
        if name in skip:
            continue
        if name == "build_marts":
            marts = _night(ds, settings, peak)
            steps["build_marts"] = {k: v for k, v in marts.items() if k not in ("ds", "nodes")
                                    and not isinstance(v, (list, dict))}
            continue
        with measured(peak, steps, name):
            reports = run_step(name, ds, settings)
        if name == "score":  # where scoring's time goes: features, predict, recommendations, ...
            steps[name]["cpu_seconds_by_part"] = reports[-1].details.get("cpu_seconds_by_part")
    night = {"ds": ds.isoformat(), **_summary(steps, 0), "skipped": sorted(skip)}
    del night["share_of_full_run"], night["cpu_share_of_full_run"]
    night["identity_stability"] = {} if first else _stability(settings, snapshot, truth)
    night["build_marts_nodes"] = marts.get("nodes", [])
    return night


def _commit() -> str | None:
    """The code measured (None outside a git checkout)."""
    done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True, help="a home holding a built warehouse")
    ap.add_argument("--landing", type=Path, default=None, help="default: <home>/landing")
    ap.add_argument("--lake", type=Path, default=None, help="default: <home>/lake")
    ap.add_argument("--ds", type=date.fromisoformat, action="append", required=True,
                    help="a night to run (repeat, in order)")
    ap.add_argument("--extract-only", type=date.fromisoformat, action="append", default=[],
                    help="a date only extracted, before the nights (repeat; e.g. the backfill day)")
    ap.add_argument("--skip", action="append", default=[], choices=NIGHTLY,
                    help="a warehouse step to leave out (repeat)")
    ap.add_argument("--truth", type=Path, default=None, help="ground truth: identity quality after the last night")
    ap.add_argument("--label", default="run")
    args = ap.parse_args()

    os.environ["PERSONALIZATION_HOME"] = str(args.home)
    settings = load_settings(home=args.home, landing_dir=args.landing or args.home / "landing",
                             lake_dir=args.lake or args.home / "lake")
    out = REPO / "benchmarks" / "results" / f"home-nights-{args.label}-{date.today()}.json"
    results: dict = {"home": str(args.home), "label": args.label, "cpus": os.cpu_count(),
                     "commit": _commit(), "duckdb_memory_limit": settings.duckdb_memory_limit,
                     "load_avg_at_start": [round(x, 2) for x in os.getloadavg()], "nights": []}
    peak = PeakSampler().start()
    for ds in args.extract_only:
        for source in SOURCES:
            with measured(peak, results.setdefault("extract_only", {}), f"{source} {ds}"):
                run_step(f"extract_{source}", ds, settings)
    for ds in args.ds:
        night = _one_night(ds, settings, peak, set(args.skip), args.home / "identity_before.parquet",
                           args.truth)
        results["nights"].append(night)
        out.write_text(json.dumps(results, indent=2, default=str) + "\n")
        marts = night["steps"]["build_marts"]
        print(f"{ds}: {night['seconds']} s, {night['cpu_seconds']} CPU s, load {night['load_avg']}, "
              f"peak {night['peak_rss_mib']} MiB; build_marts {marts['seconds']} s / "
              f"{marts['cpu_seconds']} CPU s (identity models {marts['identity_model_cpu_seconds']} CPU s); "
              f"ids kept {night['identity_stability'].get('share_known_kept')} "
              f"(real persons' main id {night['identity_stability'].get('share_real_main_id_kept')})",
              flush=True)
    peak.stop()
    if args.truth:
        results["outcomes"] = _outcomes(settings, args.truth, args.ds[-1])
    results["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results: {out}")


if __name__ == "__main__":
    main()

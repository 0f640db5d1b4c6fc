"""What one small dbt data test costs here, whatever it checks: `dbt test` of the N cheapest
tests of a night and of the first of them alone, alternately, CPU seconds of this process.
(CPU of N - CPU of 1) / (N - 1) is the cost of a test on a table too small to matter.

    python benchmarks/data_test_overhead.py --home DIR [--lake K] [--landing L] --ds 2026-09-04 \
        --results benchmarks/results/home-nights-<label>-<date>.json [--below 0.15] [--rounds 2]

The tests are those of the results file's last night whose node took under `--below` wall
seconds (tests on small tables). The home must hold that night's warehouse.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from personalization.config import load_settings  # noqa: E402
from personalization.warehouse import invoke  # noqa: E402


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--lake", type=Path, default=None)
    ap.add_argument("--landing", type=Path, default=None)
    ap.add_argument("--ds", type=date.fromisoformat, required=True)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--below", type=float, default=0.15)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    os.environ["PERSONALIZATION_HOME"] = str(args.home)
    settings = load_settings(home=args.home, landing_dir=args.landing or args.home / "landing",
                             lake_dir=args.lake or args.home / "lake")
    night = json.loads(args.results.read_text())["nights"][-1]
    names = sorted(n["name"] for n in night["build_marts_nodes"]
                   if n["kind"] == "test" and n["seconds"] < args.below)
    invoke(["test", "--select", names[0]], settings, args.ds)  # parse once, warm caches
    runs: dict[int, list[dict]] = {1: [], len(names): []}
    for _ in range(args.rounds):
        for count in runs:
            cpu, wall = _cpu(), time.perf_counter()
            invoke(["test", "--select", *names[:count]], settings, args.ds)
            runs[count].append({"cpu_seconds": round(_cpu() - cpu, 2),
                                "seconds": round(time.perf_counter() - wall, 2),
                                "load_avg": round(os.getloadavg()[0], 2)})
    one = min(r["cpu_seconds"] for r in runs[1])
    many = min(r["cpu_seconds"] for r in runs[len(names)])
    print(json.dumps({"tests": len(names), "runs": {str(k): v for k, v in runs.items()},
                      "cpu_seconds_per_test": round((many - one) / (len(names) - 1), 4)}, indent=2))


if __name__ == "__main__":
    main()

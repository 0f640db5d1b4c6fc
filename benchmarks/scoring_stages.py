"""Where a scoring night's CPU goes, statement by statement.

    python benchmarks/scoring_stages.py --home benchmarks/work/scoring --ds 2026-09-02

Scores `--ds` in an existing home (e.g. the work directory `scoring_scale.py` leaves: its
warehouse copy, models and the kept state of the night before), timing every SQL statement
the scoring code runs (CPU seconds of the process, every DuckDB thread, and wall seconds) and
printing those above `--min-cpu` with the parts `score` reports. Features and predictions
run before the recommendations here (`score(overlap=False)`), so that each statement's CPU
is its own; `--overlap` runs them beside each other as the nightly step does (then the
statements' CPU seconds include the other thread's: read the wall seconds). It overwrites
that night's scores folder, as a rerun of the night would.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from personalization.config import load_settings  # noqa: E402

score_module = importlib.import_module("personalization.scoring.score")


class _Timed:
    """A connection whose `execute` records (cpu s, wall s, statement)."""

    def __init__(self, con, log: list):
        self._con, self._log = con, log

    def __getattr__(self, name):
        return getattr(self._con, name)

    def cursor(self):
        return _Timed(self._con.cursor(), self._log)

    def execute(self, sql, *args, **kwargs):
        cpu, wall = time.process_time(), time.perf_counter()
        result = self._con.execute(sql, *args, **kwargs)
        self._log.append((time.process_time() - cpu, time.perf_counter() - wall,
                          " ".join(str(sql).split())))
        return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--ds", type=date.fromisoformat, required=True)
    ap.add_argument("--min-cpu", type=float, default=0.05)
    ap.add_argument("--overlap", action="store_true",
                    help="features and predictions beside the recommendations, as nightly")
    args = ap.parse_args()
    log: list = []
    connect = score_module.connect_read_only
    score_module.connect_read_only = lambda settings: _Timed(connect(settings), log)
    cpu, wall = time.process_time(), time.perf_counter()
    report = score_module.score(args.ds, load_settings(home=args.home), overlap=args.overlap)
    total, wall = time.process_time() - cpu, time.perf_counter() - wall
    for cpu_s, wall_s, sql in log:
        if cpu_s >= args.min_cpu:
            print(f"{cpu_s:7.2f} {wall_s:7.2f}  {sql[:110]}")
    print(f"total CPU s {total:.2f}, wall s {wall:.2f}")
    print(json.dumps({k: report.details.get(k) for k in (
        "cpu_seconds_by_part", "seconds_by_part", "recommendations", "send_hours")}, default=str))


if __name__ == "__main__":
    main()

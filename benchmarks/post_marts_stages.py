"""Where the steps after the marts go, statement by statement.

    python benchmarks/post_marts_stages.py --home H [--landing L] [--lake K] --ds 2026-09-04 \
        [--steps build_segments,gate_segments,export,sync,gate_marts,gate_lake] [--min-cpu 0.1]

Reruns each step for `--ds` in an existing home (e.g. one `home_nights.py` left after that
night: a rerun replaces the night's output, as the pipeline's would) and prints its CPU
seconds. For the dbt steps, every node of every dbt call (models, unit and data tests) with
the CPU seconds of its execution window; for the others, every DuckDB statement the step
runs (`duckdb.connect` is wrapped while it runs) above `--min-cpu`, slowest first. What is
not in the statements is Python: GX, hashing, row loops. CPU seconds of this process (DuckDB
and dbt run in it); compare them, not wall seconds, on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

from benchmarks.identity_nights import _CpuSampler  # noqa: E402
from benchmarks.marts_nights import _nodes  # noqa: E402
from personalization.config import load_settings  # noqa: E402
from personalization.pipeline import run_step  # noqa: E402

STEPS = "build_segments,gate_segments,export,sync,gate_marts,gate_lake"
_connect = duckdb.connect


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Timed:
    """A connection whose `execute`/`sql`/`executemany` record (cpu s, wall s, statement)."""

    def __init__(self, con, log: list):
        self._con, self._log = con, log

    def __getattr__(self, name):
        return getattr(self._con, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._con.close()

    def _timed(self, method, sql, *args, **kwargs):
        cpu, wall = _cpu(), time.perf_counter()
        result = method(sql, *args, **kwargs)
        self._log.append((_cpu() - cpu, time.perf_counter() - wall, " ".join(str(sql).split())))
        return result

    def execute(self, sql, *args, **kwargs):
        return self._timed(self._con.execute, sql, *args, **kwargs)

    def sql(self, sql, *args, **kwargs):
        return self._timed(self._con.sql, sql, *args, **kwargs)

    def executemany(self, sql, *args, **kwargs):
        return self._timed(self._con.executemany, sql, *args, **kwargs)


def _dbt_step(step: str, ds: date, settings) -> list[list[dict]]:
    """Run a dbt step; the nodes of each dbt call (run_results.json holds only the last)."""
    import personalization.warehouse.dbt as dbt

    calls: list[list[dict]] = []
    invoke = dbt.invoke
    with _CpuSampler() as sampler:
        def recorded(*args, **kwargs):
            result = invoke(*args, **kwargs)
            time.sleep(0.3)  # one more CPU sample after the call's last node
            calls.append(_nodes(settings, sampler))
            return result

        dbt.invoke = recorded
        try:
            run_step(step, ds, settings)
        finally:
            dbt.invoke = invoke
    return calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--landing", type=Path, default=None, help="default: <home>/landing")
    ap.add_argument("--lake", type=Path, default=None, help="default: <home>/lake")
    ap.add_argument("--ds", type=date.fromisoformat, required=True)
    ap.add_argument("--steps", default=STEPS, help=f"comma-separated, in order (default {STEPS})")
    ap.add_argument("--min-cpu", type=float, default=0.1)
    args = ap.parse_args()
    os.environ["PERSONALIZATION_HOME"] = str(args.home)
    settings = load_settings(home=args.home, landing_dir=args.landing or args.home / "landing",
                             lake_dir=args.lake or args.home / "lake")
    for step in args.steps.split(","):
        cpu, wall = _cpu(), time.perf_counter()
        if step.startswith("build_"):
            calls = _dbt_step(step, args.ds, settings)
            print(f"== {step}: {_cpu() - cpu:.2f} CPU s, {time.perf_counter() - wall:.1f} s, "
                  f"load {os.getloadavg()[0]:.1f}")
            for i, nodes in enumerate(calls):
                print(f"  dbt call {i + 1}: nodes {sum(n['cpu_seconds'] or 0 for n in nodes):.2f} CPU s")
                for n in sorted(nodes, key=lambda n: -(n["cpu_seconds"] or 0)):
                    if (n["cpu_seconds"] or 0) >= args.min_cpu:
                        print(f"    {n['cpu_seconds']:7.2f} {n['kind']:9} {n['name']}")
            continue
        log: list = []
        duckdb.connect = lambda *a, log=log, **k: _Timed(_connect(*a, **k), log)
        try:
            run_step(step, args.ds, settings)
        finally:
            duckdb.connect = _connect
        print(f"== {step}: {_cpu() - cpu:.2f} CPU s, {time.perf_counter() - wall:.1f} s, "
              f"load {os.getloadavg()[0]:.1f}; SQL {sum(r[0] for r in log):.2f} CPU s in "
              f"{len(log)} statements")
        for cpu_s, wall_s, sql in sorted(log, key=lambda r: -r[0]):
            if cpu_s < args.min_cpu:
                break
            print(f"  {cpu_s:6.2f} {wall_s:6.2f} {sql[:200]}")


if __name__ == "__main__":
    main()

"""Time the generator alone at a scale: CPU seconds, wall seconds, peak memory, machine load.

    python benchmarks/generate_scale.py --customers 1000000 [--days 31] [--seed 42]
        [--work DIR] [--keep] [--label TEXT]

Runs `personalization generate` in a child process (so its CPU time and peak resident set
are the child's own, read from getrusage), samples the load average every 5 s, and appends
one record to benchmarks/results/generate-<date>.json (a list of runs). The landing files
are deleted afterwards unless --keep (5M persons x 30 days is ~38 GB of gzip).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(customers: int, days: int, seed: int, work: Path, keep: bool, label: str) -> dict:
    landing = work / "landing"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    loads: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(5):
            loads.append(os.getloadavg()[0])

    cli = Path(sys.executable).with_name("personalization")
    cmd = [str(cli), "generate", "--out", str(landing), "--customers", str(customers), "--days", str(days),
           "--seed", str(seed), "--start", "2026-09-01"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_start = os.getloadavg()[0]
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    done.set()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"generate failed:\n{proc.stderr[-4000:]}")
    cpu_user, cpu_sys = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    size = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file())
    loads = loads or [os.getloadavg()[0]]
    record = {
        "label": label, "customers": customers, "days": days, "seed": seed,
        "summary": next((m.group(1) for m in re.finditer(r"\((\d[\d,]* persons, .*?)\)", proc.stdout + proc.stderr)), ""),
        "wall_s": round(wall, 1), "cpu_s": round(cpu_user + cpu_sys, 1),
        "cpu_user_s": round(cpu_user, 1), "cpu_sys_s": round(cpu_sys, 1),
        "cpu_share_of_2_cores": round((cpu_user + cpu_sys) / wall / 2, 3),
        "peak_rss_mib": round(after.ru_maxrss / 1024),
        "landing_gib": round(size / 2**30, 2),
        "load_avg_start": round(load_start, 2), "load_avg_mean": round(sum(loads) / len(loads), 2),
        "load_avg_max": round(max(loads), 2),
        # What the wall time would be with both cores to ourselves (CPU bound, as parallel as
        # measured on an idle machine): CPU seconds over 2, an optimistic floor.
        "wall_floor_2_idle_cores_s": round((cpu_user + cpu_sys) / 2, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, required=True)
    ap.add_argument("--days", type=int, default=31)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--work", type=Path, default=Path("/tmp/generate-scale"))
    ap.add_argument("--keep", action="store_true", help="keep the landing files")
    ap.add_argument("--label", default="", help="free text stored with the record (e.g. the commit)")
    args = ap.parse_args()
    record = run(args.customers, args.days, args.seed, args.work / str(args.customers), args.keep, args.label)
    out = REPO / "benchmarks" / "results" / f"generate-{date.today().isoformat()}.json"
    runs = json.loads(out.read_text()) if out.exists() else []
    runs.append(record)
    out.write_text(json.dumps(runs, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    print(f"appended to {out}")


if __name__ == "__main__":
    main()

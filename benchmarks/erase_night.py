"""CPU seconds of the nightly `erase` step, per part, and what two runs left behind.

    python benchmarks/erase_night.py plant --home H --landing L --ds 2026-10-02 --persons 100
    python benchmarks/erase_night.py time --repo DIR --home H --landing L --lake K --ds 2026-09-26 [--out F]
    python benchmarks/erase_night.py compare ROOT_A ROOT_B

`plant` makes `ds` an erasure night on a built home (e.g. the one `run.py --keep` leaves):
erasure requests for `--persons` persons of the warehouse who have an email (a fixed pseudo-
random choice), an empty contacts file, and the CRM extract of that day; then `time` it.

`time` runs `erase` for `ds` with the code of `--repo` (put first on sys.path, so one venv
serves two checkouts) on a home, landing copy and lake that it changes: give it a fresh copy
of the same state for each code version, and run them back to back (the machine is shared:
compare CPU seconds of the process, DuckDB included). Each redaction function's wall and CPU
seconds are recorded (nested calls are counted in both). `compare` checks that two such
roots (each holding `lake/`, `landing/`, `home/warehouse.duckdb`) hold the same data: row
count and checksum of every lake and quarantine table and warehouse table, and the
non-blank lines of every landing file (a line blanked and a line dropped are the same).
"""

from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import json
import os
import sys
import time
from datetime import date
from pathlib import Path

PARTS = {
    "personalization.privacy.redact": (
        "lake_tables", "lake_hits", "quarantine_hits", "rewrite_quarantine",
        "landing_files", "landing_lines", "published_folder", "published_folders", "parquet_files",
        "warehouse", "compact_warehouse"),
    "personalization.privacy.erasure": ("_resolve_new_persons",),
}


def _timed(module, name: str, totals: dict) -> None:
    f = getattr(module, name, None)
    if f is None:  # not in this code version
        return

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        wall, cpu = time.time(), time.process_time()
        try:
            return f(*args, **kwargs)
        finally:
            w, c = totals.get(name, (0.0, 0.0))
            totals[name] = (w + time.time() - wall, c + time.process_time() - cpu)

    setattr(module, name, wrapper)


def time_erase(args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(args.repo))
    os.environ["PERSONALIZATION_HOME"] = str(args.home)
    import importlib

    from personalization.config import load_settings
    from personalization.pipeline import run_step

    totals: dict = {}
    for module_name, names in PARTS.items():
        module = importlib.import_module(module_name)
        assert module.__file__.startswith(str(args.repo)), module.__file__
        for name in names:
            _timed(module, name, totals)
    settings = load_settings(home=args.home, landing_dir=args.landing, lake_dir=args.lake)
    load = os.getloadavg()[0]
    wall, cpu = time.time(), time.process_time()
    run_step("erase", date.fromisoformat(args.ds), settings)
    wall, cpu = time.time() - wall, time.process_time() - cpu
    report = json.loads((args.home / "privacy" / "reports" / args.ds / "erase.json").read_text())
    return {"repo": str(args.repo), "ds": args.ds, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "load_avg": [round(load, 1), round(os.getloadavg()[0], 1)],
            "parts_wall_cpu_s": {k: [round(w, 1), round(c, 1)] for k, (w, c) in totals.items()},
            "report": {k: v for k, v in report.items() if k != "areas"},
            "areas": {a: {"files": v["files"], "rows_removed": v["rows_removed"]}
                      for a, v in report["areas"].items()}}


def plant(args: argparse.Namespace) -> dict:
    import csv

    import duckdb

    from personalization.config import load_settings
    from personalization.pipeline import run_step

    settings = load_settings(home=args.home, landing_dir=args.landing)
    day = args.landing / "crm" / args.ds
    day.mkdir(parents=True, exist_ok=True)
    contacts = sorted(args.landing.glob("crm/*/contacts.csv"))[0]
    (day / "contacts.csv").write_text(contacts.read_text().split("\n", 1)[0] + "\n")
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        # Addresses of one person each: a request for a shared address (a role address such
        # as info@…) erases everyone who has it on a record.
        emails = [r[0] for r in con.execute("""
            SELECT any_value(email) FROM customer_profiles
            WHERE email IS NOT NULL AND NOT is_erased
            GROUP BY lower(trim(email)) HAVING count(*) = 1
              AND lower(trim(any_value(email))) NOT IN (
                  SELECT key_value FROM int_identity__junk_values WHERE key_type = 'email')
            ORDER BY hash(lower(trim(any_value(email))) || 'night') LIMIT ?""",
            [args.persons]).fetchall()]
    with (day / "erasure_requests.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["email", "requested_at"])
        writer.writerows([email, f"{args.ds} 09:00:00"] for email in emails)
    run_step("extract_crm", date.fromisoformat(args.ds), settings)
    return {"ds": args.ds, "requests": len(emails)}


def fingerprint(root: Path) -> dict:
    import duckdb

    out: dict = {}
    con = duckdb.connect()
    for table in sorted([*root.glob("lake/raw/*/*"), *root.glob("lake/quarantine/*/*")]):
        out[table.relative_to(root).as_posix()] = con.execute(
            f"SELECT count(*), sum(hash(t::VARCHAR)) FROM read_parquet('{table}/ds=*/*.parquet', "
            "union_by_name = true) t").fetchone()
    for path in sorted(root.glob("landing/*/*/*")):
        data = path.read_bytes()
        lines = [x for x in (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).split(b"\n")
                 if x.strip()]
        out[path.relative_to(root).as_posix()] = (len(lines), hashlib.md5(b"\n".join(lines)).hexdigest())
    warehouse = duckdb.connect(str(root / "home" / "warehouse.duckdb"), read_only=True)
    for (table,) in warehouse.execute("SELECT table_name FROM information_schema.tables WHERE "
                                      "table_schema = 'main' AND table_type = 'BASE TABLE'").fetchall():
        out[f"warehouse:{table}"] = warehouse.execute(
            f'SELECT count(*), sum(hash(t::VARCHAR)) FROM main."{table}" t').fetchone()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("time")
    for name in ("repo", "home", "landing", "lake"):
        t.add_argument(f"--{name}", type=Path, required=True)
    t.add_argument("--ds", required=True)
    t.add_argument("--out", type=Path)
    p = sub.add_parser("plant")
    for name in ("home", "landing"):
        p.add_argument(f"--{name}", type=Path, required=True)
    p.add_argument("--ds", required=True)
    p.add_argument("--persons", type=int, default=100)
    c = sub.add_parser("compare")
    c.add_argument("roots", type=Path, nargs=2)
    args = ap.parse_args()
    if args.command == "plant":
        print(json.dumps(plant(args)))
    elif args.command == "time":
        result = time_erase(args)
        print(json.dumps(result, indent=2))
        if args.out:
            args.out.write_text(json.dumps(result, indent=2) + "\n")
    else:
        a, b = (fingerprint(root) for root in args.roots)
        differ = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        print(json.dumps({"compared": len(a | b), "differ": differ[:50]}, indent=2, default=str))


if __name__ == "__main__":
    main()

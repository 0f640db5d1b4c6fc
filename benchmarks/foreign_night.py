"""The night on data we did not generate (issue 21): landing files from the independent
generator in tests/foreign_generator, every day extracted, then the whole night for the last
day; reports whether it published and how identity resolution did against the ground truth.

    python benchmarks/foreign_night.py --people 100000 [--days 30] [--seed 21] [--work DIR] [--keep]

Identity figures (scope: true people with a CRM or shop record that reached identity_map):
- over_merged_ids: share of unified_ids holding records of more than one true person
  (target <= 0.5 %);
- split_people: share of true people whose records are spread over several unified_ids
  (target <= 2 %).
Writes benchmarks/results/foreign-<people>-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
import traceback
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import duckdb  # noqa: E402
from foreign_generator import Options, generate  # noqa: E402

from personalization.config import SOURCES, load_settings  # noqa: E402
from personalization.pipeline import STEPS, date_range, run_step  # noqa: E402
from personalization.warehouse.evaluate import evaluate  # noqa: E402

START = date(2026, 4, 1)

IDENTITY_SQL = """
with truth as (
    select source, source_id, person_id from read_parquet($truth)
    where source in ('crm', 'shop')
),
placed as (
    select truth.person_id, m.unified_id
    from truth join identity_map m on m.source = truth.source and m.source_id = truth.source_id
),
per_id as (select unified_id, count(distinct person_id) as people from placed group by unified_id),
per_person as (select person_id, count(distinct unified_id) as ids from placed group by person_id)
select
    (select count(*) from per_id) as ids,
    (select count(*) from per_id where people > 1) as over_merged_ids,
    (select max(people) from per_id) as most_people_in_one_id,
    (select count(*) from per_person) as people,
    (select count(*) from per_person where ids > 1) as split_people
"""


def identity_figures(warehouse: Path, truth: Path) -> dict:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cur = con.execute(IDENTITY_SQL, {"truth": str(truth)})
        row = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
    row["over_merged_share"] = row["over_merged_ids"] / row["ids"] if row["ids"] else 0.0
    row["split_share"] = row["split_people"] / row["people"] if row["people"] else 0.0
    return row


def quarantine_figures(settings, warehouse: Path) -> dict:
    lake = settings.lake_dir
    log = duckdb.sql(f"""select sum(rows_in), sum(rows_loaded), sum(rows_quarantined)
        from read_parquet('{lake}/load_log/*/*/*/part-0.parquet')""").fetchall()[0]
    out = {"load_log_rows_in": int(log[0]), "load_log_rows_loaded": int(log[1]),
           "load_log_rows_quarantined": int(log[2])}
    if warehouse.exists():
        with duckdb.connect(str(warehouse), read_only=True) as con:
            tables = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
            if "quarantined_orders" in tables:
                out["quarantined_orders"] = dict(con.execute(
                    "select reason, count(*) from quarantined_orders group by reason").fetchall())
                out["staged_orders"], out["published_orders"] = con.execute(
                    "select (select count(*) from stg_shop__orders), (select count(*) from orders)").fetchone()
                # Orders whose account the warehouse does not hold, attached through their email.
                out["orders_attached_through_email"] = con.execute(
                    "select count(*) from int_orders__person_keys "
                    "where customer_id is not null and person_source = 'guest'").fetchone()[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--work", type=Path, default=REPO / "benchmarks" / "work" / "foreign")
    parser.add_argument("--keep", action="store_true", help="keep the work dir afterwards")
    parser.add_argument("--skip-generate", action="store_true", help="reuse landing files in --work")
    args = parser.parse_args()

    work = args.work
    if work.exists() and not args.skip_generate:
        shutil.rmtree(work)
    settings = load_settings(home=work / "home", esp_targets=["file_drop"])
    truth = work / "truth.parquet"
    result: dict = {"people": args.people, "days": args.days, "seed": args.seed,
                    "start": START.isoformat(), "machine": {
                        "cpus": os.cpu_count(), "python": platform.python_version(),
                        "load_average_at_start": os.getloadavg()}, "steps": {}}
    t0 = time.perf_counter()
    if not args.skip_generate:
        result["generated"] = generate(settings.landing_dir, truth, args.people, args.days, START,
                                       seed=args.seed, options=Options())
    result["steps"]["generate"] = round(time.perf_counter() - t0, 1)
    print(f"generated in {result['steps']['generate']} s", flush=True)

    last = START + timedelta(days=args.days - 1)
    t0 = time.perf_counter()
    for ds in date_range(START, last):
        for source in SOURCES:
            run_step(f"extract_{source}", ds, settings)
    result["steps"]["extract_all_days"] = round(time.perf_counter() - t0, 1)
    print(f"extracted {args.days} days in {result['steps']['extract_all_days']} s", flush=True)
    result["published"] = False
    for name in STEPS:
        if name.startswith("extract_"):
            continue
        t0 = time.perf_counter()
        try:
            run_step(name, last, settings)
        except Exception as e:  # noqa: BLE001 - the benchmark records where the night stopped
            result["stopped_at"] = name
            result["error"] = str(e).splitlines()[:12]
            traceback.print_exc()
            break
        finally:
            result["steps"][name] = round(time.perf_counter() - t0, 1)
            print(f"{name}: {result['steps'][name]} s", flush=True)
    manifest = settings.exports_dir / last.isoformat() / "manifest.json"
    result["published"] = manifest.is_file()
    result["machine"]["load_average_at_end"] = os.getloadavg()
    result["quarantine"] = quarantine_figures(settings, settings.warehouse_path)
    if settings.warehouse_path.exists():
        try:
            result["identity"] = identity_figures(settings.warehouse_path, truth)
            pairwise = evaluate(truth, settings)
            result["identity_pairwise"] = {scope: {k: v for k, v in vals.items()}
                                           for scope, vals in pairwise["scopes"].items()}
        except Exception as e:  # noqa: BLE001
            result["identity_error"] = str(e)
    out = REPO / "benchmarks" / "results" / f"foreign-{args.people}-{date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({k: result.get(k) for k in ("published", "stopped_at", "identity", "steps")},
                     indent=2, default=str))
    print(f"written {out}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Scoring at scale without generating the scale: copy a real warehouse's scoring inputs
`--factor` times (each copy's ids suffixed, so persons, orders and events are distinct) and
time weekly training and nightly scoring on the copy.

    python benchmarks/scoring_scale.py --warehouse benchmarks/work/100000/home/warehouse.duckdb \
        --ds 2026-09-30 --factor 10

A 100k-person warehouse from `benchmarks/run.py --keep` times 10 gives 1M persons with the
real per-person mix of orders, items, events and engagement days (the copies share the
catalogue, so item co-occurrence counts grow 10x as they would with 10x the shoppers).
With `--nights 2` scoring runs for `--ds` (no kept state: everything computed, item
neighbours built) and then for the day after (recommendations recomputed only for persons
whose inputs changed), so the warehouse must hold that day (a copy of a `run.py` warehouse
built through `--ds + 1` does; the first night's cut-off ignores it).
Writes benchmarks/results/scoring/<date>-<persons>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.memory import PeakSampler, measured  # noqa: E402
from personalization.config import load_settings  # noqa: E402
from personalization.scoring import score, train  # noqa: E402
from personalization.scoring.db import REQUIRED_TABLES  # noqa: E402

# Columns that identify a row or a person; each copy suffixes them.
ID_COLUMNS = ("unified_id", "order_id", "event_id", "customer_id", "absorbed_unified_id",
              "surviving_unified_id")


def scale_warehouse(source: Path, target: Path, factor: int) -> dict[str, int]:
    """Write `target` holding the scoring marts of `source`, each row `factor` times."""
    import duckdb

    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    counts = {}
    with duckdb.connect(str(target)) as con:
        con.execute(f"attach '{source}' as src (read_only)")
        for table in REQUIRED_TABLES:
            columns = [r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_catalog = 'src' "
                "and table_name = ? order by ordinal_position", [table]).fetchall()]
            if table == "products":
                con.execute(f"create table {table} as select * from src.{table}")
            else:
                select = ", ".join(
                    f"case when {c} is null then null else {c} || '~' || copy end as {c}"
                    if c in ID_COLUMNS else c for c in columns)
                con.execute(f"create table {table} as select {select} "
                            f"from src.{table}, range({factor}) as copies(copy)")
            counts[table] = con.execute(f"select count(*) from {table}").fetchone()[0]
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warehouse", type=Path, required=True)
    ap.add_argument("--ds", type=date.fromisoformat, required=True)
    ap.add_argument("--factor", type=int, default=10)
    ap.add_argument("--work", type=Path, default=REPO / "benchmarks" / "work" / "scoring")
    ap.add_argument("--reuse-warehouse", action="store_true",
                    help="keep the copy already in --work (made by an earlier run with this --factor)")
    ap.add_argument("--nights", type=int, default=2, choices=(1, 2),
                    help="score --ds only, or --ds and the day after (incremental)")
    ap.add_argument("--next-warehouse", type=Path, default=None,
                    help="a warehouse built one night after --warehouse (as the nightly build "
                         "leaves it): the second night scores its copy, as in production; "
                         "without it both nights score the --warehouse copy")
    args = ap.parse_args()

    settings = load_settings(home=args.work)
    reuse = args.reuse_warehouse and settings.warehouse_path.exists()
    if reuse:
        shutil.rmtree(settings.models_dir, ignore_errors=True)
        shutil.rmtree(settings.scores_dir, ignore_errors=True)
    else:
        shutil.rmtree(args.work, ignore_errors=True)
        settings = load_settings(home=args.work)
    sampler = PeakSampler().start()
    steps: dict = {}
    if reuse:
        import duckdb

        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            counts = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in REQUIRED_TABLES}
    else:
        with measured(sampler, steps, "copy_warehouse"):
            counts = scale_warehouse(args.warehouse, settings.warehouse_path, args.factor)
    with measured(sampler, steps, "train"):
        trained = train(args.ds, settings)
    nights = {}
    for n in range(args.nights):
        night = args.ds + timedelta(days=n)
        name = "score" if n == 0 else "score_next_night"
        if n and args.next_warehouse:
            with measured(sampler, steps, "copy_next_warehouse"):
                scale_warehouse(args.next_warehouse, settings.warehouse_path, args.factor)
        with measured(sampler, steps, name):
            nightly = score(night, settings)
        nights[name] = {"ds": night.isoformat(), "seconds": nightly.seconds,
                        "rows_out": nightly.rows_out,
                        "trained_first": "training" in nightly.details,
                        "recommendations": nightly.details.get("recommendations"),
                        "seconds_by_part": nightly.details.get("seconds_by_part"),
                        "cpu_seconds_by_part": nightly.details.get("cpu_seconds_by_part")}
    sampler.stop()
    persons = counts["customer_profiles"]
    result = {
        "persons": persons, "factor": args.factor, "load_avg_at_end": [round(x, 2) for x in os.getloadavg()], "ds": args.ds.isoformat(),
        "source_warehouse": str(args.warehouse),
        "next_warehouse": args.next_warehouse and str(args.next_warehouse), "rows": counts, "steps": steps,
        "train": {k: trained.details.get(k) for k in ("rows_available", "rows_used",
                                                       "features_seconds",
                                                       "recommendations_seconds")}
        | {"seconds": trained.seconds, "status": trained.status,
           "models": {m: {k: v for k, v in d.items() if k in ("approved", "roc_auc", "fit_seconds")}
                      for m, d in trained.details.get("models", {}).items()},
           "next_best_product": trained.details.get("next_best_product")},
        **nights,
    }
    out = REPO / "benchmarks" / "results" / "scoring" / f"{date.today().isoformat()}-{persons}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result, indent=2, default=str))
    print(f"results: {out}")


if __name__ == "__main__":
    main()

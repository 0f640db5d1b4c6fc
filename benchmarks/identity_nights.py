"""Incremental identity over several nights: time per night, id stability, incremental = full.

    python benchmarks/identity_nights.py --customers 100000 [--days 3] [--seed 7] [--work DIR]

Generates `days` deliveries of the harder generator (`personalization generate`), extracts
them, then builds the identity models night by night with dbt: night 1 from scratch, the
next nights incrementally (only new or changed records and the pairs they form are compared;
docs/identity.md). Reports per night the identity models' seconds (staging apart), the
share of crm/shop records (and of true persons known by crm or shop) whose unified_id did
not change from the night before, and precision/recall (`evaluate`), with wall and CPU
seconds and the load average (the machine is shared). The last night is also rebuilt with
`--full-refresh` from the warehouse as it was before that night, once with the same stored
identity model (`identity_reestimate: false`: must give the same identity map) and once
re-estimating it, and the identity maps are compared record by record (clusters and ids). Writes
benchmarks/results/identity-nights-<customers>-<date>.json. One run at a time.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import resource
import shutil
import sys
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

from personalization.config import load_settings  # noqa: E402
from personalization.extract import extract_source  # noqa: E402
from personalization.generate import generate  # noqa: E402
from personalization.warehouse.dbt import invoke  # noqa: E402
from personalization.warehouse.evaluate import evaluate  # noqa: E402

START = date(2026, 1, 1)
SELECT = ["+identity_map", "+identity_merges", "+int_identity__splits", "+int_identity__oversized_clusters",
          "int_identity__blocking_rules"]

STABILITY_SQL = """
with today as (select source || ':' || source_id as record_key, unified_id from read_parquet($today)),
before as (select source || ':' || source_id as record_key, unified_id from read_parquet($before)),
truth as (select source || ':' || source_id as record_key, person_id from read_parquet($truth)),
both_nights as (
    select today.record_key, truth.person_id, today.unified_id = before.unified_id as kept
    from today join before using (record_key) left join truth using (record_key)
    where today.record_key like 'crm:%' or today.record_key like 'shop:%'
)
select
    count(*) as records,
    avg(kept::int) as records_kept,
    (select avg(all_kept::int) from (select person_id, bool_and(kept) as all_kept from both_nights
                                     where person_id is not null group by person_id)) as persons_kept,
    (select count(distinct person_id) from both_nights) as persons
from both_nights
"""

COMPARE_SQL = """
with a as (select source || ':' || source_id as k, unified_id as id from read_parquet($a)),
b as (select source || ':' || source_id as k, unified_id as id from read_parquet($b)),
j as (select a.k, a.id as id_a, b.id as id_b from a full join b using (k))
select
    count(*) as records,
    count(*) filter (where id_a is null or id_b is null) as missing,
    count(*) filter (where id_a <> id_b) as different_ids,
    (select count(*) from (select id_a from j group by id_a having count(distinct id_b) > 1)) as split_clusters,
    (select count(*) from (select id_b from j group by id_b having count(distinct id_a) > 1)) as merged_clusters
from j
"""


def _identity_seconds(settings) -> tuple[float, dict[str, float]]:
    results = json.loads((settings.dbt_target_dir / "run_results.json").read_text())["results"]
    models = {r["unique_id"].split(".")[-1]: r["execution_time"] for r in results
              if r["unique_id"].startswith("model.")}
    identity = {k: round(v, 1) for k, v in models.items() if "identity" in k}
    return round(sum(identity.values()), 1), {k: v for k, v in identity.items() if v >= 0.5}


class _CpuSampler:
    """This process's CPU seconds (dbt and DuckDB run in it), sampled every 0.2 s, so each
    model's CPU can be read off its execution window in run_results.json: on a shared
    machine wall seconds say more about the neighbours than about the model."""

    def __init__(self):
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            usage = resource.getrusage(resource.RUSAGE_SELF)
            self.samples.append((time.time(), usage.ru_utime + usage.ru_stime))
            self._stop.wait(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def cpu_at(self, moment: float) -> float:
        index = bisect.bisect_left(self.samples, (moment, -1.0))
        return self.samples[min(index, len(self.samples) - 1)][1]


def _identity_cpu_seconds(settings, sampler: _CpuSampler) -> tuple[float, dict[str, float]]:
    results = json.loads((settings.dbt_target_dir / "run_results.json").read_text())["results"]
    cpu = {}
    for r in results:
        name = r["unique_id"].split(".")[-1]
        window = [t for t in r.get("timing", []) if t["name"] == "execute"]
        if not r["unique_id"].startswith("model.") or "identity" not in name or not window:
            continue
        start, end = (datetime.fromisoformat(window[0][k].replace("Z", "+00:00")).timestamp()
                      for k in ("started_at", "completed_at"))
        cpu[name] = round(sampler.cpu_at(end) - sampler.cpu_at(start), 1)
    return round(sum(cpu.values()), 1), {k: v for k, v in cpu.items() if v >= 0.3}


def _export_map(settings, path: Path) -> None:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        con.execute(f"copy (select source, source_id, unified_id from identity_map) to '{path}' (format parquet)")


def _cpu_seconds() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def _build(settings, ds: date, full_refresh: bool = False, extra_vars: dict | None = None) -> dict:
    """One `dbt build` of the identity chain (with its staging): wall and CPU seconds (dbt
    runs in this process), and the load average before and after (the machine is shared)."""
    command = ["build", "--select", *SELECT, "--indirect-selection", "cautious"]
    if full_refresh:
        command.append("--full-refresh")
    load_before = os.getloadavg()[0]
    cpu, started = _cpu_seconds(), time.perf_counter()
    with _CpuSampler() as sampler:
        invoke(command, settings, ds=ds, extra_vars=extra_vars)
    identity_cpu, per_model_cpu = _identity_cpu_seconds(settings, sampler)
    return {"build_seconds": round(time.perf_counter() - started, 1),
            "build_cpu_seconds": round(_cpu_seconds() - cpu, 1),
            "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
            "identity_model_cpu_seconds": identity_cpu, "model_cpu_seconds": per_model_cpu}


def _restore(saved: Path, settings) -> None:
    """Put a saved warehouse in place (and drop a write-ahead log left by an interrupted run)."""
    shutil.copy(saved, settings.warehouse_path)
    settings.warehouse_path.with_name(settings.warehouse_path.name + ".wal").unlink(missing_ok=True)


def _model_state(settings, ds: date) -> dict:
    """What tonight's run did: the stored model's decision, pairs compared, candidate pairs."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return {
            "model_reestimated": con.execute("select reason from int_identity__model_schedule").fetchone()[0],
            "model_estimated_on": str(con.execute(
                "select max(estimated_on) from int_identity__m_probabilities").fetchone()[0]),
            "pairs_compared_tonight": con.execute(
                "select count(*) from int_identity__compared_pairs where compared_on = ?", [ds]).fetchone()[0],
            "pairs_cached": con.execute("select count(*) from int_identity__compared_pairs").fetchone()[0],
            "candidate_pairs": con.execute("select count(*) from int_identity__candidate_pairs").fetchone()[0],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/tmp/identity-nights"))
    parser.add_argument("--last-night-only", action="store_true",
                        help="start from the warehouse saved before the last night by an earlier run")
    parser.add_argument("--resume-after", type=int, default=0,
                        help="start from warehouse_after_night<N>.duckdb of an earlier --keep-warehouses run "
                             "(e.g. to measure a code change from the same state)")
    parser.add_argument("--keep-warehouses", action="store_true",
                        help="keep a copy of the warehouse after every night (warehouse_after_night<N>.duckdb)")
    parser.add_argument("--skip-reestimated", action="store_true",
                        help="rebuild the last night only with the stored model, not also re-estimated")
    parser.add_argument("--out", type=Path, help="result file (default benchmarks/results/...)")
    args = parser.parse_args()

    home = args.work / f"c{args.customers}-d{args.days}-s{args.seed}"
    settings = load_settings(home=home)
    truth = home / "truth.parquet"
    days = [START + timedelta(days=d) for d in range(args.days)]
    result: dict = {"customers": args.customers, "days": args.days, "seed": args.seed,
                    "date": date.today().isoformat(), "nights": []}
    if not truth.exists():
        started = time.perf_counter()
        generate(out=settings.landing_dir, customers=args.customers, days=args.days, seed=args.seed,
                 start=START, truth_path=truth)
        for ds in days:
            for source in ("crm", "shop", "pixel"):
                extract_source(source, ds, settings)
        result["generate_extract_seconds"] = round(time.perf_counter() - started, 1)

    maps = home / "maps"
    maps.mkdir(exist_ok=True)
    if args.resume_after:
        _restore(home / f"warehouse_after_night{args.resume_after}.duckdb", settings)
    elif not args.last_night_only:
        # Night 1 from scratch: no history either.
        for path in (settings.warehouse_path, settings.warehouse_path.with_name(settings.warehouse_path.name + ".wal")):
            path.unlink(missing_ok=True)
    for number, ds in enumerate(days, start=1):
        if (args.last_night_only and number < len(days)) or number <= args.resume_after:
            continue
        if args.last_night_only:
            _restore(home / "warehouse_before_last.duckdb", settings)
        elif number == len(days) and number > 1:
            shutil.copy(settings.warehouse_path, home / "warehouse_before_last.duckdb")
        timing = _build(settings, ds, full_refresh=number == 1)
        identity_seconds, per_model = _identity_seconds(settings)
        night = {"ds": ds.isoformat(), "mode": "full" if number == 1 else "incremental", **timing,
                 "identity_model_seconds": identity_seconds, "model_seconds": per_model,
                 **_model_state(settings, ds)}
        if args.keep_warehouses:
            shutil.copy(settings.warehouse_path, home / f"warehouse_after_night{number}.duckdb")
        _export_map(settings, maps / f"night{number}.parquet")
        scores = evaluate(truth, settings)["scopes"]
        night["quality"] = {scope: {k: round(scores[scope][k], 4) for k in ("precision", "recall", "f1")}
                            for scope in ("linkable", "profiles")}
        if number > 1:
            row = duckdb.execute(STABILITY_SQL, {"today": str(maps / f"night{number}.parquet"),
                                                 "before": str(maps / f"night{number - 1}.parquet"),
                                                 "truth": str(truth)}).fetchone()
            night["stability"] = dict(zip(("crm_shop_records", "records_kept", "persons_kept", "persons"),
                                          row, strict=True))
        result["nights"].append(night)
        print(json.dumps(night, default=str), flush=True)

    if len(days) > 1:
        # The last night rebuilt from scratch from the same previous state: with the same
        # stored identity model (what the incremental night must equal exactly), and, unless
        # --skip-reestimated, as a plain --full-refresh that re-estimates the model.
        incremental_map = maps / f"night{len(days)}.parquet"
        twins = {"full_refresh_same_model_last_night": {"identity_reestimate": False}}
        if not args.skip_reestimated:
            twins["full_refresh_last_night"] = {}
        for name, extra_vars in twins.items():
            _restore(home / "warehouse_before_last.duckdb", settings)
            timing = _build(settings, days[-1], full_refresh=True, extra_vars=extra_vars)
            identity_seconds, per_model = _identity_seconds(settings)
            _export_map(settings, maps / f"{name}.parquet")
            row = duckdb.execute(COMPARE_SQL, {"a": str(incremental_map),
                                               "b": str(maps / f"{name}.parquet")}).fetchone()
            scores = evaluate(truth, settings)["scopes"]
            result[name] = {
                **timing, "identity_model_seconds": identity_seconds, "model_seconds": per_model,
                **_model_state(settings, days[-1]),
                "quality": {scope: {k: round(scores[scope][k], 4) for k in ("precision", "recall", "f1")}
                            for scope in ("linkable", "profiles")},
                "vs_incremental": dict(zip(("records", "missing", "different_ids", "split_clusters",
                                            "merged_clusters"), row, strict=True))}
            print(json.dumps({name: result[name]}, default=str), flush=True)
    result["peak_rss_mib"] = round(max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                                       resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024)

    out = args.out or REPO / "benchmarks" / "results" / f"identity-nights-{args.customers}-{date.today().isoformat()}.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()

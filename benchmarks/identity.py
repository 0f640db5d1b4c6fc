"""Identity resolution at scale: ours vs the Splink yardstick on the same records.

    python benchmarks/identity.py --customers 100000 [--seed 7] [--work DIR]
        [--splink-python PATH]   # a Python with `pip install splink` (its own environment)
    python benchmarks/identity.py --home /work/bench/1000000/home --truth /work/bench/1000000/truth.parquet \
        --splink-python PATH     # score a home another run built (benchmarks/run.py --keep), as it is
    python benchmarks/identity.py --home /work/bench/spark1m/duckdb --truth /work/bench/spark1m/truth.parquet \
        --customers 1000000 --tag 2days --splink-python PATH [--splink-memory-limit 8GB]

Generates one day of the harder generator (`personalization generate`), extracts it, builds
the identity models with dbt (timed, per model), evaluates identity_map against the ground
truth (`evaluate`), then, if --splink-python is given, runs benchmarks/identity_splink.py on
the same crm/shop person records and scores its clusters the same way. Both are compared on
the `profiles` scope (crm + shop records, the only ones Splink sees). With `--home` it builds
nothing: it scores that home's identity_map as its last night left it (e.g. the harness's 1M
run, 31 days) and runs Splink on the same records; the generator's `truth_dirt.json` beside
the truth, when there, says which data that home holds (seed, customers, days) and goes into
the result. Splink's run is recorded with its wall seconds, its CPU seconds and peak RSS (from
the Splink process itself) and its versions; its DuckDB gets `--splink-memory-limit` and
`--splink-threads` (at 1M it would otherwise take 80 % of the shared machine's memory). Writes
benchmarks/results/identity-<customers>[-<tag>]-<date>.json. One run at a time: it uses both cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

from personalization.config import load_settings  # noqa: E402
from personalization.extract import extract_source  # noqa: E402
from personalization.generate import generate  # noqa: E402
from personalization.warehouse.dbt import invoke  # noqa: E402
from personalization.warehouse.evaluate import evaluate, pair_metrics  # noqa: E402

DS = date(2026, 1, 1)
SELECT = ["+identity_map", "+identity_merges", "+int_identity__splits", "+int_identity__oversized_clusters",
          "int_identity__blocking_rules"]

RECORDS_SQL = """
copy (
    select record_key, first_name_canonical as first_name, last_name_clean as last_name,
        birth_date, street_clean as street, postcode_clean as postcode, city_clean as city,
        phone_e164 as phone, email_normalized as email
    from int_identity__guarded_records
    where source in ('crm', 'shop')
) to '{path}' (format parquet)
"""

def learned_model(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """The stored identity model: m, u and match weight per comparison level."""
    return [dict(zip(("comparison", "level", "m", "u", "weight"), row, strict=True))
            for row in con.execute("select comparison, comparison_level, m_probability, u_probability, "
                                   "match_weight from int_identity__m_probabilities order by 1, 2").fetchall()]


SCORE_SQL = """
with truth as (
    select source || ':' || source_id as record_key, person_id
    from read_parquet($truth) where source in ('crm', 'shop')
),
scored as (
    select truth.person_id, clusters.cluster_id
    from truth join read_parquet($clusters) clusters on clusters.record_key = truth.record_key
)
select
    (select sum(n * (n - 1) / 2) from (select count(*)::hugeint n from scored group by person_id))::bigint,
    (select sum(n * (n - 1) / 2) from (select count(*)::hugeint n from scored group by cluster_id))::bigint,
    (select sum(n * (n - 1) / 2) from (select count(*)::hugeint n from scored group by person_id, cluster_id))::bigint
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/tmp/identity-bench"))
    parser.add_argument("--splink-python", type=Path)
    parser.add_argument("--home", type=Path, help="score this built home as it is (no generate, no build)")
    parser.add_argument("--truth", type=Path, help="ground truth of --home (default <home>/truth.parquet)")
    parser.add_argument("--tag", help="added to the result's name, e.g. 2days")
    parser.add_argument("--splink-memory-limit", default="8GB", help="DuckDB memory_limit of Splink's run")
    parser.add_argument("--splink-threads", type=int, default=2, help="DuckDB threads of Splink's run")
    args = parser.parse_args()

    home = args.home or args.work / f"c{args.customers}-s{args.seed}"
    settings = load_settings(home=home)
    truth = args.truth or home / "truth.parquet"
    result: dict = {"customers": args.customers, "seed": args.seed, "date": date.today().isoformat(),
                    "machine": f"{platform.machine()} {platform.processor()}".strip()}
    if args.home:
        result["home"] = str(home)
        args.work.mkdir(parents=True, exist_ok=True)
        if not truth.exists():
            sys.exit(f"no ground truth at {truth}: pass --truth")
        dirt = truth.with_name("truth_dirt.json")
        if dirt.exists():
            data = json.loads(dirt.read_text())
            result["data"] = {k: data.get(k) for k in ("seed", "customers", "days", "start")}
    elif not truth.exists():
        started = time.perf_counter()
        generate(out=settings.landing_dir, customers=args.customers, days=1, seed=args.seed, start=DS,
                 truth_path=truth)
        for source in ("crm", "shop", "pixel"):
            extract_source(source, DS, settings)
        result["generate_extract_seconds"] = round(time.perf_counter() - started, 1)

    if not args.home:
        started = time.perf_counter()
        invoke(["build", "--select", *SELECT, "--indirect-selection", "cautious"], settings, ds=DS)
        result["identity_build_seconds"] = round(time.perf_counter() - started, 1)
        run_results = json.loads((settings.dbt_target_dir / "run_results.json").read_text())["results"]
        result["model_seconds"] = {r["unique_id"].split(".")[-1]: round(r["execution_time"], 1)
                                   for r in run_results if r["unique_id"].startswith("model.")
                                   and r["execution_time"] >= 1}
    ours = evaluate(truth, settings)
    result["ours"] = {scope: {k: ours["scopes"][scope][k] for k in
                              ("precision", "recall", "f1", "records_evaluated", "true_pairs")}
                      for scope in ours["scopes"]}
    result["ours_by_source_pair"] = ours["by_source_pair"]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        result["blocking_rules"] = [dict(zip(("rule", "blocks", "skipped_blocks", "skipped_records",
                                              "candidate_pairs", "only_this_rule"), row, strict=True))
                                    for row in con.execute("select * from int_identity__blocking_rules "
                                                           "order by blocking_rule").fetchall()]
        result["model"] = learned_model(con)
        result["prior_weight"] = con.execute(
            "select max(prior_weight) from int_identity__m_probabilities").fetchone()[0]
        records = args.work / f"person_records-{args.customers}.parquet" if args.home \
            else home / "person_records.parquet"
        con.execute(RECORDS_SQL.format(path=records))

    if args.splink_python:
        clusters = records.with_name(f"splink_clusters-{args.customers}.parquet")
        started = time.perf_counter()
        run = subprocess.run([str(args.splink_python), str(REPO / "benchmarks" / "identity_splink.py"),
                              str(records), str(clusters), "--memory-limit", args.splink_memory_limit,
                              "--threads", str(args.splink_threads)],
                             capture_output=True, text=True, check=False)
        if run.returncode != 0:
            result["splink_error"] = run.stderr[-2000:]
        else:
            result["splink_timing"] = json.loads(run.stdout.strip().splitlines()[-1])
            result["splink_timing"]["wall_seconds_with_start"] = round(time.perf_counter() - started, 1)
            true_pairs, predicted, overlap = duckdb.execute(
                SCORE_SQL, {"truth": str(truth), "clusters": str(clusters)}).fetchone()
            result["splink"] = {"profiles": {**pair_metrics(true_pairs, predicted, overlap),
                                             "true_pairs": true_pairs}}

    tag = f"-{args.tag}" if args.tag else ""
    out = REPO / "benchmarks" / "results" / f"identity-{args.customers}{tag}-{date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    summary = {k: result[k] for k in ("identity_build_seconds", "ours") if k in result}
    summary["splink"] = result.get("splink") or result.get("splink_error")
    print(json.dumps(summary, indent=2, default=str))
    print(f"written {out}")


if __name__ == "__main__":
    main()

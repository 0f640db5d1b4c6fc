"""The Splink yardstick: a default-style Splink model (DuckDB backend) on our person records.

Runs in its own environment (Splink pins its own DuckDB): `python identity_splink.py
records.parquet clusters.parquet [--memory-limit 8GB] [--threads 2]`. Reads crm/shop person
records (record_key, first_name, last_name, birth_date, street, postcode, city, phone, email)
and writes (record_key, cluster_id) at match probability >= 0.99, plus timings, CPU seconds,
peak RSS and versions on stdout as one JSON line. DuckDB's memory limit and threads are set
explicitly (it would take 80 % of RAM and every core): at 1M people the pair tables spill
instead of crowding the other jobs on a shared machine. The model
follows Splink's own examples: name comparisons with Jaro-Winkler and term frequencies,
date of birth with edits, exact/Levenshtein address parts, u by random sampling, m by EM
over two training rules, the prior from deterministic rules at recall 0.7.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from importlib.metadata import version

import duckdb
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on


def main(records_path: str, clusters_path: str, memory_limit: str = "8GB", threads: int = 2,
         temp_dir: str | None = None) -> None:
    started = time.perf_counter()
    con = duckdb.connect()
    temp_dir = temp_dir or tempfile.gettempdir()
    con.execute(f"set memory_limit = '{memory_limit}'")
    con.execute(f"set threads = {int(threads)}")
    con.execute(f"set temp_directory = '{temp_dir}'")
    con.execute(f"create table records as select * from read_parquet('{records_path}')")
    db_api = DuckDBAPI(con)
    df = db_api.register("records")
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_key",
        comparisons=[
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("last_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("birth_date", input_is_string=False),
            cl.LevenshteinAtThresholds("street", [1, 3]).configure(term_frequency_adjustments=True),
            cl.LevenshteinAtThresholds("postcode", [1]).configure(term_frequency_adjustments=True),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.LevenshteinAtThresholds("phone", [1]),
            cl.EmailComparison("email"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("first_name", "birth_date"),
            block_on("last_name", "birth_date"),
            block_on("last_name", "postcode"),
            block_on("first_name", "postcode"),
            block_on("street", "postcode"),
            block_on("first_name", "last_name"),
            block_on("phone"),
            block_on("email"),
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )
    linker = Linker(df, settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "last_name", "birth_date"), block_on("email")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "last_name"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth_date"))
    trained = time.perf_counter()
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=0.99)
    con.execute(f"copy (select record_key, cluster_id from {clusters.physical_name}) "
                f"to '{clusters_path}' (format parquet)")
    done = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)  # this process and DuckDB's threads
    records, = con.execute("select count(*) from records").fetchone()
    pairs, = con.execute(f"select count(*) from {predictions.physical_name}").fetchone()
    print(json.dumps({"train_seconds": round(trained - started, 1),
                      "predict_cluster_seconds": round(done - trained, 1),
                      "seconds": round(done - started, 1),
                      "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
                      "peak_rss_mib": round(usage.ru_maxrss / 1024),  # Linux: KiB
                      "records": records, "predicted_pairs_p05": pairs,
                      "memory_limit": memory_limit, "threads": threads,
                      "splink": version("splink"), "duckdb": duckdb.__version__}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records")
    parser.add_argument("clusters")
    parser.add_argument("--memory-limit", default="8GB", help="DuckDB memory_limit (default 8GB)")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (default 2)")
    parser.add_argument("--temp-dir", help="DuckDB spill directory (default a new one under $TMPDIR)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="splink-duckdb-") as spill:
        main(args.records, args.clusters, args.memory_limit, args.threads, args.temp_dir or spill)

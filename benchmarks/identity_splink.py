"""The Splink yardstick: a default-style Splink model (DuckDB backend) on our person records.

Runs in its own environment (Splink pins its own DuckDB): `python identity_splink.py
records.parquet clusters.parquet`. Reads crm/shop person records (record_key, first_name,
last_name, birth_date, street, postcode, city, phone, email) and writes (record_key,
cluster_id) at match probability >= 0.99, plus timings on stdout as one JSON line. The model
follows Splink's own examples: name comparisons with Jaro-Winkler and term frequencies,
date of birth with edits, exact/Levenshtein address parts, u by random sampling, m by EM
over two training rules, the prior from deterministic rules at recall 0.7.
"""

from __future__ import annotations

import json
import sys
import time

import duckdb
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on


def main(records_path: str, clusters_path: str) -> None:
    started = time.perf_counter()
    con = duckdb.connect()
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
    print(json.dumps({"train_seconds": round(trained - started, 1),
                      "predict_cluster_seconds": round(done - trained, 1),
                      "seconds": round(done - started, 1)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""The learned identity model on planted inputs: EM recovers m, term frequencies weigh names.

One throw-away dbt project holds the three models under test (term frequencies, pair
comparisons, EM) and stand-ins for their inputs (Parquet), so a single `dbt run` of three
models answers every test here in seconds.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parent.parent
IDENTITY = REPO / "dbt_project" / "models" / "intermediate" / "identity"
UNDER_TEST = ("int_identity__term_frequencies", "int_identity__record_fingerprints",
              "int_identity__compared_pairs", "int_identity__pair_comparisons",
              "int_identity__m_probabilities", "int_identity__model_schedule")
LAMBDA = 0.3
PAIRS = 200_000.0

# Planted m and u per comparison level, far from the weak prior m0 the EM starts from. Levels
# left out never occur (keeps the pattern table at a few hundred patterns). u here is among
# the candidate pairs, which blocking made agree far more often than random pairs do
# (RANDOM_U, the stand-in for int_identity__u_probabilities): namesakes share names, and
# half of them a town (address level 1). EM has to learn m despite that gap.
PLANTED = {
    "first_name": {4: (0.75, 0.20), 3: (0.15, 0.05), 0: (0.10, 0.75)},
    "last_name": {4: (0.80, 0.30), 3: (0.12, 0.05), 0: (0.08, 0.65)},
    "birth_date": {3: (0.80, 0.05), 2: (0.12, 0.02), 0: (0.08, 0.93)},
    "address": {5: (0.55, 0.001), 1: (0.15, 0.50), 0: (0.30, 0.499)},
    "phone": {2: (0.40, 0.0005), 0: (0.60, 0.9995)},
    "email_local_part": {2: (0.30, 0.001), 0: (0.70, 0.999)},
}
RANDOM_U = {
    "first_name": {4: 0.004, 3: 0.016, 0: 0.98},
    "last_name": {4: 0.003, 3: 0.007, 0: 0.99},
    "birth_date": {3: 0.0005, 2: 0.004, 0: 0.9955},
    "address": {5: 0.00001, 1: 0.02, 0: 0.97999},
    "phone": {2: 0.0005, 0: 0.9995},
    "email_local_part": {2: 0.001, 0: 0.999},
}
ALL_LEVELS = {"first_name": range(5), "last_name": range(5), "birth_date": range(4),
              "address": range(6), "phone": range(3), "email_local_part": range(3)}
COMPARISONS = list(PLANTED)


def _patterns() -> pa.Table:
    """Every level combination with its expected pair count under the planted model, long form."""
    rows = []
    for levels in itertools.product(*(sorted(PLANTED[c]) for c in COMPARISONS)):
        m = math.prod(PLANTED[c][lv][0] for c, lv in zip(COMPARISONS, levels, strict=True))
        u = math.prod(PLANTED[c][lv][1] for c, lv in zip(COMPARISONS, levels, strict=True))
        count = PAIRS * (LAMBDA * m + (1 - LAMBDA) * u)
        pattern_id = ",".join(map(str, levels))
        for comparison, level in zip(COMPARISONS, levels, strict=True):
            rows.append({"pattern_id": pattern_id, "pair_count": count, "comparison": comparison,
                         "comparison_level": level,
                         **{f"{c}_level": lv for c, lv in zip(COMPARISONS, levels, strict=True)}})
    return pa.Table.from_pylist(rows)


def _records() -> pa.Table:
    """30 Smiths, two John Quislings, and others: a common and a rare namesake pair."""
    people = [("john", "smith")] * 2 + [(f"p{i}", "smith") for i in range(28)]
    people += [("john", "quisling")] * 2 + [(f"q{i}", f"other{i}") for i in range(68)]
    return pa.Table.from_pylist([{
        "record_key": f"crm:{i}", "source": "crm", "first_name_clean": first,
        "first_name_canonical": first, "last_name_clean": last, "birth_date": None,
        "street_clean": None, "postcode_clean": None, "city_clean": None, "phone_e164": None,
        "email_local_part": None,
    } for i, (first, last) in enumerate(people)], schema=pa.schema([
        ("record_key", pa.string()), ("source", pa.string()), ("first_name_clean", pa.string()),
        ("first_name_canonical", pa.string()), ("last_name_clean", pa.string()),
        ("birth_date", pa.date32()), ("street_clean", pa.string()), ("postcode_clean", pa.string()),
        ("city_clean", pa.string()), ("phone_e164", pa.string()), ("email_local_part", pa.string()),
    ]))


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("identity_model")
    data = root / "data"
    data.mkdir()
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy(REPO / name, root / name)
    models = root / "dbt_project" / "models" / "intermediate" / "identity"
    models.mkdir(parents=True)
    for name in UNDER_TEST:
        shutil.copy(IDENTITY / f"{name}.sql", models / f"{name}.sql")
    (root / "dbt_project" / "macros").mkdir()
    # changed_rows.sql: the config of the tables written as their changes (pair comparisons);
    # exact_sum.sql: their term-frequency weights.
    for path in [*(REPO / "dbt_project" / "macros").glob("identity_*.sql"),
                 *(REPO / "dbt_project" / "macros" / name
                   for name in ("engine.sql", "changed_rows.sql", "exact_sum.sql"))]:
        shutil.copy(path, root / "dbt_project" / "macros" / path.name)
    u_rows = [{"comparison": c, "comparison_level": lv,
               "u_probability": RANDOM_U[c].get(lv, 1e-9)}
              for c, levels in ALL_LEVELS.items() for lv in levels]
    standins = {
        "int_identity__guarded_records": _records(),
        "int_identity__candidate_pairs": pa.Table.from_pylist([
            {"node_a": "crm:0", "node_b": "crm:1", "blocking_rule": "test"},
            {"node_a": "crm:30", "node_b": "crm:31", "blocking_rule": "test"}]),
        "int_identity__u_sample_pairs": pa.Table.from_pylist([{"node_a": "crm:0", "node_b": "crm:2"}]),
        "int_identity__comparison_patterns": _patterns(),
        "int_identity__u_probabilities": pa.Table.from_pylist(u_rows),
        # Only its stamps are read, and only by a night after this first build.
        "int_identity__blocking_keys": pa.table({"record_key": pa.array([], pa.string()),
                                                 "sized_at": pa.array([], pa.timestamp("us"))}),
    }
    for name, table in standins.items():
        pq.write_table(table, data / f"{name}.parquet")
        (models / f"{name}.sql").write_text(f"select * from read_parquet('{data}/{name}.parquet')\n")
    env = {**os.environ, "PERSONALIZATION_HOME": str(root), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "PERSONALIZATION_WAREHOUSE_PATH": str(root / "warehouse.duckdb")}
    result = subprocess.run([
        str(Path(sys.executable).parent / "dbt"), "run", "--project-dir", str(root),
        "--profiles-dir", str(root), "--target-path", str(root / "target"),
        "--log-path", str(root / "logs"), "--vars", json.dumps({"ds": "2026-01-01"}),
    ], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    return root / "warehouse.duckdb"


def _query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).fetchall()


def test_em_recovers_the_planted_m_probabilities(model):
    learned = {(c, lv): (m, change) for c, lv, m, change in _query(model, """
        select comparison, comparison_level, m_probability, m_change from int_identity__m_probabilities""")}
    for comparison, levels in ALL_LEVELS.items():
        for level in levels:
            m = PLANTED[comparison][level][0] if level in PLANTED[comparison] else 0.0
            assert learned[(comparison, level)][0] == pytest.approx(m, abs=0.005), (comparison, level)
    # Converged: with u learned per session too (two free classes) EM moves more slowly than
    # with u fixed; the last of the 40 iterations moves no m by more than 0.0005.
    assert max(change for _, change in learned.values()) < 5e-4


def test_term_frequencies_separate_a_common_from_a_rare_namesake_pair(model):
    adjustment = dict(_query(model, """
        select node_b, tf_adjustment from int_identity__pair_comparisons"""))
    common, rare = adjustment["crm:1"], adjustment["crm:31"]
    # Both pairs agree exactly on "john" and a last name; "smith" is held by 30 of 100
    # records, "quisling" by 2: the rare pair's evidence is log2(30 / 2) bits stronger.
    assert rare - common == pytest.approx(math.log2(30 / 2), abs=1e-9)
    assert common < 0 < rare

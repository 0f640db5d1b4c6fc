"""The same night on DuckDB and on Spark gives the same people, profiles, RFM, segments and
exports (docs/scale_out.md).

One small landing (300 customers, 4 days) is extracted once. DuckDB builds, tests, scores and
exports the last night; Spark (dbt-spark on one local session) builds the same marts and
segments from the same lake with the same scores, the later steps read its serving copy, and
every public table and export file is compared row for row. Needs pyspark, dbt-spark and
Java 17 (`make spark`); skipped without them.
"""

from __future__ import annotations

import csv
import os
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]

# Opt-in (make spark sets it): on main's identity SQL the unrolled EM of
# int_identity__m_probabilities does not finish on Spark yet (docs/scale_out.md, "Not done").
if os.environ.get("PERSONALIZATION_SPARK_TESTS") != "1":
    pytest.skip("Spark equality test is opt-in: make spark", allow_module_level=True)
pytest.importorskip("pyspark")
pytest.importorskip("dbt.adapters.spark")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java 17 (make spark)", allow_module_level=True)

from personalization.config import SOURCES, load_settings  # noqa: E402
from personalization.generate import generate  # noqa: E402
from personalization.pipeline import date_range, run_step  # noqa: E402

START = date(2026, 6, 1)
DAYS = 4
DS = START + timedelta(days=DAYS - 1)
BUILD = ["build_marts", "gate_marts"]
SEGMENTS = ["build_segments", "gate_segments", "export"]
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    root = tmp_path_factory.mktemp("spark_equality")
    duck = load_settings(home=root / "duckdb")
    generate(out=duck.landing_dir, customers=300, days=DAYS, seed=11, start=START,
             truth_path=root / "truth.parquet")
    for ds in date_range(START, DS):
        for source in SOURCES:
            run_step(f"extract_{source}", ds, duck)
    started = time.perf_counter()
    for step in [*BUILD, "score", *SEGMENTS]:
        run_step(step, DS, duck)
    TIMINGS["duckdb"] = time.perf_counter() - started
    # Same lake, same scores and models (scoring is single-node and engine-agnostic); dbt's
    # data tests ran on DuckDB over the same rows, so Spark only builds.
    spark = load_settings(home=root / "spark", lake_dir=duck.lake_dir, scores_dir=duck.scores_dir,
                          models_dir=duck.models_dir, engine="spark", dbt_tests=False)
    started = time.perf_counter()
    for step in [*BUILD, *SEGMENTS]:
        run_step(step, DS, spark)
    TIMINGS["spark"] = time.perf_counter() - started
    print(f"\nequality night: duckdb {TIMINGS['duckdb']:.0f} s, spark {TIMINGS['spark']:.0f} s")
    return duck, spark


def _rows(settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def _same(engines, table: str) -> int:
    """Every row of `table` equal on both engines (doubles to 6 decimals: sums run in another
    order on Spark); returns the row count."""
    duck, spark = engines
    with duckdb.connect(str(duck.warehouse_path), read_only=True) as con:
        columns = con.execute(f"describe main.{table}").fetchall()
    select = ", ".join(
        f"round({name}, 6) as {name}" if kind in ("DOUBLE", "FLOAT") else name
        for name, kind, *_ in columns)
    sql = f"select {select} from main.{table} order by all"
    expected, actual = _rows(duck, sql), _rows(spark, sql)
    assert len(actual) == len(expected), f"{table}: {len(actual)} rows on Spark, {len(expected)} on DuckDB"
    for want, got in zip(expected, actual, strict=True):
        assert got == want, f"{table} differs:\n duckdb {want}\n spark  {got}"
    return len(expected)


def test_spark_resolves_the_same_people(engines):
    assert _same(engines, "identity_map") > 300


def test_spark_builds_the_same_profiles_and_rfm(engines):
    assert _same(engines, "customer_profiles") > 100
    assert _same(engines, "customer_rfm") > 0


def test_spark_builds_the_same_segment_memberships(engines):
    duck, _ = engines
    from personalization.warehouse.catalog import list_segments

    segments = [s.name for s in list_segments(duck)]
    assert len(segments) >= 10
    members = 0
    for name in segments:
        members += _same(engines, name)
    assert members > 0


def _export_rows(settings) -> dict[str, list[list[str]]]:
    folder = Path(settings.exports_dir) / DS.isoformat() / "segments"
    return {p.name: sorted(csv.reader(p.open(encoding="utf-8"))) for p in sorted(folder.glob("*.csv"))}


def test_spark_exports_the_same_rows(engines):
    duck, spark = engines
    expected, actual = _export_rows(duck), _export_rows(spark)
    assert sorted(actual) == sorted(expected)
    assert sum(len(rows) for rows in expected.values()) > len(expected)  # not only headers
    for name, rows in expected.items():
        assert actual[name] == rows, f"export {name} differs"

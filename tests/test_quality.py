"""Quality gate on a small hand-built warehouse: a clean run passes; each planted problem fails
with the table, the expectation and sample ids; warnings don't stop the run."""

import json
from datetime import date

import duckdb
import pandas as pd
import pytest

from personalization.config import load_settings
from personalization.exceptions import QualityGateError
from personalization.quality import gate, validate_export

DS1, DS2 = date(2026, 3, 1), date(2026, 3, 2)
N = 200


def _build_warehouse(path, *, monetary_factor=1.0, duplicate_profile=False, erased_email=False,
                     segment_size=60):
    con = duckdb.connect(str(path))
    con.execute(f"""
        CREATE OR REPLACE TABLE customer_profiles AS
        SELECT 'u' || i AS unified_id, 'p' || i || '@example.org' AS email,
               'F' || i AS first_name, 'L' || i AS last_name, NULL AS phone, NULL AS street,
               i % 3 <> 0 AS is_opted_in, false AS is_unsubscribed, false AS is_erased,
               i % 3 <> 0 AS is_contactable,
               CASE WHEN i % 2 = 0 THEN 'active' ELSE 'prospect' END AS lifecycle_stage,
               CASE WHEN i % 2 = 0 THEN 10.0 * (i % 50) * {monetary_factor} ELSE 0 END AS revenue
        FROM range(1, {N} + 1) t(i)
    """)
    if duplicate_profile:
        con.execute("INSERT INTO customer_profiles SELECT * FROM customer_profiles WHERE unified_id = 'u7'")
    if erased_email:
        con.execute("UPDATE customer_profiles SET email = 'gone@example.org' WHERE unified_id = 'u5'")
    con.execute(f"""
        CREATE OR REPLACE TABLE identity_map AS
        SELECT 'crm' AS source, 'c' || i AS source_id, 'u' || i AS unified_id, 'email' AS match_rule,
               1.0 AS match_score FROM range(1, {N} + 1) t(i)
        UNION ALL
        SELECT 'shop', 's' || i, 'u' || i, 'email', 1.0 FROM range(1, {N} + 1, 2) t(i);
        CREATE OR REPLACE TABLE orders AS
        SELECT 'o' || unified_id AS order_id, unified_id, 'placed' AS status, revenue AS total_amount
        FROM customer_profiles WHERE revenue > 0;
        CREATE OR REPLACE TABLE customer_rfm AS
        SELECT unified_id, (i * 7) % 365 AS recency_days, 1 + i % 5 AS frequency,
               revenue AS monetary, 1 + i % 5 AS recency_score, 1 + i % 5 AS frequency_score,
               1 + (i * 3) % 5 AS monetary_score, 'loyal' AS rfm_segment
        FROM (SELECT *, row_number() OVER (ORDER BY unified_id) AS i FROM customer_profiles
              WHERE revenue > 0);
        CREATE OR REPLACE TABLE customer_scores AS
        SELECT unified_id, (i % 10) / 10.0 AS p_vip, (i % 7) / 7.0 AS p_churn, 9 AS best_send_hour,
               'vip-1' AS vip_model_version, 'churn-1' AS churn_model_version
        FROM (SELECT unified_id, row_number() OVER () AS i FROM customer_profiles);
        CREATE OR REPLACE TABLE big_spenders AS
        SELECT unified_id, revenue AS spent FROM customer_profiles LIMIT {segment_size};
    """)
    con.close()


def _manifest(settings, segments=("big_spenders",)):
    settings.dbt_target_dir.mkdir(parents=True, exist_ok=True)
    nodes = {f"model.personalization.{s}": {
        "resource_type": "model", "name": s, "tags": ["segment"], "description": s,
        "original_file_path": f"dbt_project/models/segments/{s}.sql",
        "config": {"meta": {"owner": "crm"}}, "columns": {"unified_id": {}}} for s in segments}
    (settings.dbt_target_dir / "manifest.json").write_text(json.dumps({"nodes": nodes}))


def _erasure(settings, email="gone@example.org"):
    part = settings.lake_dir / "raw/crm/erasure_requests/ds=2026-03-01"
    part.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"email": [email], "requested_at": [pd.Timestamp("2026-03-01 10:00")]}).to_parquet(
        part / "part-0.parquet")


@pytest.fixture
def settings(tmp_path):
    s = load_settings(home=tmp_path)
    s.home.mkdir(parents=True, exist_ok=True)
    _manifest(s)
    _erasure(s)
    return s


def test_clean_marts_pass_and_store_results_and_docs(settings):
    _build_warehouse(settings.warehouse_path)
    report = gate(DS1, "marts", settings)
    assert report.status == "passed"
    stored = json.loads((settings.quality_dir / "2026-03-01" / "marts.json").read_text())
    assert stored["status"] == "passed" and stored["errors"] == []
    assert stored["expectations_evaluated"] >= 15
    assert (settings.quality_dir / "data_docs" / "index.html").exists()


def test_duplicate_profile_ids_fail_with_table_expectation_and_sample(settings):
    _build_warehouse(settings.warehouse_path, duplicate_profile=True)
    with pytest.raises(QualityGateError) as e:
        gate(DS1, "marts", settings)
    msg = str(e.value)
    assert "customer_profiles: expect_column_values_to_be_unique" in msg
    assert "u7" in msg
    stored = json.loads((settings.quality_dir / "2026-03-01" / "marts.json").read_text())
    assert stored["status"] == "failed"


def test_rfm_score_out_of_range_fails_with_the_persons_id(settings):
    # GX judges only the RFM rows that could fail (the others are counted): the bad row
    # still fails the gate, named by its id, and the drift baseline still sees every row.
    _build_warehouse(settings.warehouse_path)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        bad, rows = con.execute("SELECT min(unified_id), count(*) FROM customer_rfm").fetchone()
        con.execute("UPDATE customer_rfm SET recency_score = 7 WHERE unified_id = ?", [bad])
    with pytest.raises(QualityGateError, match=r"customer_rfm: expect_column_values_to_be_between"
                                               rf"\(column=recency_score.*'{bad}'"):
        gate(DS1, "marts", settings)
    stored = json.loads((settings.quality_dir / "2026-03-01" / "marts.metrics.json").read_text())
    assert rows > 50 and sum(stored["distributions"]["customer_rfm.recency_days"]["counts"]) == rows


def test_erased_email_left_in_profiles_fails(settings):
    _build_warehouse(settings.warehouse_path, erased_email=True)
    with pytest.raises(QualityGateError, match="email_matches_erasure_request"):
        gate(DS1, "marts", settings)


def test_revenue_that_does_not_reconcile_fails(settings):
    _build_warehouse(settings.warehouse_path)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("UPDATE orders SET total_amount = total_amount + 1 WHERE order_id = 'ou2'")
    with pytest.raises(QualityGateError, match="revenue_difference"):
        gate(DS1, "marts", settings)


def test_revenue_that_reconciles_passes_however_large_the_sums(settings):
    # A double sum of many large amounts is cents off their exact total (0.016 over 10M orders
    # at 3M people): the check sums exactly, so data that reconciles passes.
    _build_warehouse(settings.warehouse_path)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("ALTER TABLE orders ALTER total_amount TYPE DOUBLE")  # the marts' types
        con.execute("ALTER TABLE customer_profiles ALTER revenue TYPE DOUBLE")
        con.execute("""
            INSERT INTO orders
            SELECT o.* REPLACE ('big' || t.i AS order_id, 98765432.17 + (t.i % 97) / 100 AS total_amount)
            FROM orders AS o, range(300000) AS t(i) WHERE o.order_id = 'ou2'""")
        con.execute("""
            UPDATE customer_profiles SET revenue = (
                SELECT sum(total_amount::DECIMAL(38, 2)) FROM orders
                WHERE status = 'placed' AND unified_id = customer_profiles.unified_id)::DOUBLE
            WHERE unified_id = (SELECT unified_id FROM orders WHERE order_id = 'ou2')""")
        drift = con.execute("""
            SELECT abs((SELECT sum(revenue) FROM customer_profiles)
                       - (SELECT sum(total_amount) FROM orders WHERE status = 'placed'))""").fetchone()[0]
    assert drift > 0.005  # what the double sums said
    assert gate(DS1, "marts", settings).status in ("passed", "warning")


def test_distribution_shift_against_previous_run_fails(settings):
    _build_warehouse(settings.warehouse_path)
    gate(DS1, "marts", settings)
    _build_warehouse(settings.warehouse_path, monetary_factor=25.0)
    with duckdb.connect(str(settings.warehouse_path)) as con:  # keep revenue reconciled
        con.execute("UPDATE orders SET total_amount = total_amount")
    with pytest.raises(QualityGateError, match=r"drift\.customer_rfm"):
        gate(DS2, "marts", settings)


def test_exploding_segment_fails_and_small_change_only_warns(settings):
    _build_warehouse(settings.warehouse_path, segment_size=60)
    assert gate(DS1, "segments", settings).status == "passed"
    _build_warehouse(settings.warehouse_path, segment_size=100)  # +67%: warning
    report = gate(DS2, "segments", settings)
    assert report.status == "warning"
    assert any("big_spenders" in w for w in report.details["warnings"])
    _build_warehouse(settings.warehouse_path, segment_size=N)  # ×2 of 100: still a warning
    assert gate(date(2026, 3, 3), "segments", settings).status == "warning"
    _build_warehouse(settings.warehouse_path, segment_size=50)  # ÷4 of 200: error
    with pytest.raises(QualityGateError, match="segment.big_spenders: expect_table_row_count"):
        gate(date(2026, 3, 4), "segments", settings)


def test_export_with_non_consented_or_erased_contact_fails(settings, tmp_path):
    _build_warehouse(settings.warehouse_path)
    export = tmp_path / "export" / "segments"
    export.mkdir(parents=True)
    good = pd.DataFrame({"email": ["p1@example.org", "p2@example.org"], "unified_id": ["u1", "u2"]})
    good.to_parquet(export / "big_spenders.parquet")
    # All files are judged in one pass: a segment's own column may be called anything.
    good.assign(filename="x.csv").to_parquet(export / "lapsed_users.parquet")
    assert validate_export(export.parent, DS1, settings).status == "passed"
    # u3 has no consent (3 % 3 == 0); gone@ is erased.
    bad = pd.DataFrame({"email": ["p1@example.org", "p3@example.org", "gone@example.org"],
                        "unified_id": ["u1", "u3", "u4"]})
    bad.to_parquet(export / "big_spenders.parquet")
    with pytest.raises(QualityGateError) as e:
        validate_export(export.parent, DS1, settings)
    assert "is_contactable" in str(e.value) and "u3" in str(e.value)
    assert "is_erased" in str(e.value)


def _lake(settings, ds, rows, logged=None, late_seconds=0):
    base = settings.lake_dir
    ts = pd.Timestamp(ds) + pd.Timedelta(hours=12) + pd.Timedelta(seconds=late_seconds + 12 * 3600)
    frame = pd.DataFrame({"event_id": [f"e{i}" for i in range(rows)],
                          "occurred_at": [ts if i == 0 else pd.Timestamp(ds) for i in range(rows)]})
    part = base / "raw/pixel/events" / f"ds={ds}"
    part.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(part / "part-0.parquet")
    log = base / "load_log/pixel/events" / f"ds={ds}"
    log.mkdir(parents=True, exist_ok=True)
    n = rows if logged is None else logged
    pd.DataFrame({"rows_in": [n], "rows_loaded": [n], "rows_quarantined": [0]}).to_parquet(
        log / "part-0.parquet")


def test_lake_row_count_must_match_load_log_and_no_future_timestamps(settings):
    _lake(settings, DS1, 100)
    assert gate(DS1, "lake", settings).status == "passed"
    _lake(settings, DS1, 100, logged=120)
    with pytest.raises(QualityGateError, match="expect_table_row_count_to_equal"):
        gate(DS1, "lake", settings)
    _lake(settings, DS1, 100, late_seconds=3600)  # one hour past the end of ds
    with pytest.raises(QualityGateError, match="seconds_after_ds_end"):
        gate(DS1, "lake", settings)


def test_lake_volume_drop_is_a_warning(settings):
    _lake(settings, DS1, 100)
    gate(DS1, "lake", settings)
    _lake(settings, DS2, 10)
    report = gate(DS2, "lake", settings)
    assert report.status == "warning"
    assert "lake.pixel.events" in report.details["warnings"][0]


def test_unknown_stage_is_a_clear_error(settings):
    with pytest.raises(QualityGateError, match="unknown quality-gate stage"):
        gate(DS1, "nightly", settings)


def test_export_with_suppressed_contact_fails(settings, tmp_path):
    import hashlib

    _build_warehouse(settings.warehouse_path)
    digest = hashlib.sha256(b"p2@example.org").hexdigest()
    (settings.home / "suppressions.csv").write_text(f"email_sha256,reason\n{digest},bounce\n")
    export = tmp_path / "export" / "segments"
    export.mkdir(parents=True)
    pd.DataFrame({"email": ["p1@example.org", "p2@example.org"],
                  "unified_id": ["u1", "u2"]}).to_parquet(export / "big_spenders.parquet")
    with pytest.raises(QualityGateError, match="is_suppressed"):
        validate_export(export.parent, DS1, settings)


def test_drift_on_a_small_run_must_beat_sampling_noise():
    import numpy as np
    import pandas as pd

    from personalization.quality import drift

    rng = np.random.default_rng(7)
    # 170 scores against 170 from the same distribution: PSI is often above 0.1 by chance
    # alone, never above the noise floor at 99.9 % in 200 tries.
    chance = []
    for _ in range(200):
        before, after = pd.Series(rng.random(170)), pd.Series(rng.random(170))
        previous = drift.histogram(before)
        chance.append(drift.psi(previous, after) > drift.noise_floor(previous, after))
    assert sum(chance) <= 2
    # A real shift of the same size is beyond the floor; at 10,000 rows the floor is tiny.
    previous = drift.histogram(pd.Series(rng.random(170)))
    shifted = pd.Series(rng.random(170) ** 3)
    assert drift.psi(previous, shifted) > drift.noise_floor(previous, shifted)
    big = drift.histogram(pd.Series(rng.random(10_000)))
    assert drift.noise_floor(big, pd.Series(rng.random(10_000))) < 0.01


def test_score_drift_is_judged_against_the_same_model_only(settings):
    _build_warehouse(settings.warehouse_path)
    _manifest(settings)
    gate(DS1, "segments", settings)
    shift = "UPDATE customer_scores SET p_churn = p_churn * p_churn * p_churn"
    with duckdb.connect(str(settings.warehouse_path)) as con:  # a new model scores differently
        con.execute(shift)
        con.execute("UPDATE customer_scores SET churn_model_version = 'churn-2'")
    assert gate(DS2, "segments", settings).status == "passed"
    _build_warehouse(settings.warehouse_path)  # the same new model, scores moved back: drift
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("UPDATE customer_scores SET churn_model_version = 'churn-2'")
    with pytest.raises(QualityGateError, match=r"drift\.customer_scores"):
        gate(date(2026, 3, 3), "segments", settings)


def test_gx_judging_only_suspect_rows_gives_the_same_findings_as_every_row(tmp_path):
    from expectations import marts as mart_suites
    from personalization.quality.gx_runner import Check, run_checks, suspects_sql

    suite = mart_suites.identity_map_suite()
    con = duckdb.connect()
    con.execute("""
        CREATE TABLE m AS SELECT * FROM (VALUES
            ('crm', 'c1', 'u1', 1.0), ('crm', 'c2', 'u2', 0.0),        -- clean, on the bounds
            ('shop', 's1', 'u3', 0.5), ('shop', 's1', 'u4', 0.7),      -- compound key twice
            ('crm', 's1', 'u5', 0.9),                                  -- same id, other source
            ('fax', 'f1', 'u6', 0.5), ('crm', 'c3', NULL, 0.5),        -- not in set, null id
            ('crm', 'c4', 'u7', 1.5), ('crm', 'c5', 'u8', -0.1),       -- above / below
            (NULL, 'n1', 'u9', NULL)                                   -- nulls GX skips
        ) AS t(source, source_id, unified_id, match_score)""")
    suspects = con.execute(suspects_sql(suite, "m")).df()
    assert sorted(suspects["source_id"]) == ["c3", "c4", "c5", "f1", "s1", "s1"]

    def lines(frame):
        found, evaluated = run_checks([Check("identity_map", frame, suite, key="source_id")],
                                      tmp_path / "docs")
        return sorted((f.expectation, f.unexpected_count, tuple(sorted(f.sample)))
                      for f in found), evaluated

    assert lines(suspects) == lines(con.execute("SELECT * FROM m").df())
    clean = con.execute(suspects_sql(suite, "(SELECT * FROM m WHERE source_id IN ('c1', 'c2'))"))
    assert len(clean.df()) == 0
    # A suite with a table-level expectation needs every row: no reduction.
    from expectations import segments as segment_suites
    assert suspects_sql(segment_suites.build_suite("vip", (1, 2), (1, 3)), "m") is None

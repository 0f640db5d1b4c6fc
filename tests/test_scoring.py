"""Scoring: point-in-time features, models vs baselines, registry, scores file, recommendations,
send hours. Runs on a synthetic warehouse (mart tables written directly, planted signal)."""

from __future__ import annotations

import importlib
import json
import shutil
from datetime import date, datetime, timedelta

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest
from synthetic_warehouse import build_synthetic_warehouse

from personalization.config import load_settings
from personalization.exceptions import ScoringError
from personalization.privacy.ledger import read_parquet_sql
from personalization.scoring import registry, score, scores_path, train
from personalization.scoring.features import FEATURES, FEATURES_SQL, build_features, build_labels
from personalization.scoring.kept_state import (
    NO_HIVE,
    RECO_CATALOGUE_FILE,
    RECO_NEIGHBOURS_FILE,
    RECO_SKUS_FILE,
    RECO_STATE_FILE,
    RECO_VIEWS_FILE,
    SEND_HOURS_FILE,
    SEND_SUMS_FILE,
)
from personalization.scoring.recommend import build_recommendations_kept
from personalization.scoring.score import POPULATION_SQL, training_needed
from personalization.scoring.send_hour import build_send_hours
from personalization.scoring.viewed import view_rows_sql

DS = date(2026, 3, 31)
CONTRACT = ["unified_id", "p_vip", "p_churn", "vip_model_version", "churn_model_version",
            "scored_at", "next_best_products", "best_send_hour"]


@pytest.fixture(scope="module")
def scoring_home(tmp_path_factory):
    """A synthetic warehouse (3,000 persons, 2 years) scored once from a fresh install."""
    home = tmp_path_factory.mktemp("scoring")
    settings = load_settings(home=home)
    truth = build_synthetic_warehouse(settings.warehouse_path, DS, customers=3000, seed=1)
    report = score(DS, settings)
    return settings, truth, report


def _scores(settings, ds=DS) -> pd.DataFrame:
    return pq.read_table(scores_path(settings, ds)).to_pandas()


def test_features_do_not_see_rows_after_the_cutoff(tmp_path):
    path = tmp_path / "w.duckdb"
    build_synthetic_warehouse(path, DS, customers=400, seed=3)
    cutoff = date(2025, 12, 1)
    con = duckdb.connect(str(path))
    before = build_features(con, cutoff)
    labels_before = build_labels(con, cutoff, 90)
    # Copy every order and event to the cut-off instant or later (the boundary itself is
    # "future"), with ten times the money, and overwrite the profile's current-state columns.
    con.execute("""
        insert into orders select order_id || 'x', unified_id, customer_id,
            timestamp '2025-12-01 00:00:00' + interval (hash(order_id) % 90) day, ordered_on,
            'placed', currency, total_amount * 10, item_count, is_guest_checkout
        from orders;
        insert into order_items select order_id || 'x', line_number, unified_id, sku,
            'cat_new', quantity, unit_price, line_amount * 10,
            timestamp '2025-12-01 00:00:00' + interval (hash(order_id) % 90) day, 'placed'
        from order_items;
        insert into customer_events select event_id || 'x', unified_id,
            timestamp '2025-12-01 00:00:00' + interval (hash(event_id) % 86400) second,
            event_type, sku, category, campaign_id, variant, 'smart_tv', date '2025-12-01'
        from customer_events;
        insert into customer_engagement_daily select unified_id, date '2025-12-01',
            1, 1, 1, 1, 1, 1, 1, 1, 1
        from customer_profiles;
        update customer_profiles set revenue = revenue * 100, order_count = 99,
            last_order_at = timestamp '2026-03-30', main_device = 'smart_tv';
    """)
    after = build_features(con, cutoff)
    labels_after = build_labels(con, cutoff, 90)
    con.close()
    pd.testing.assert_frame_equal(before, after)
    # The future really changed: the labels (which look after the cutoff) moved.
    assert labels_after["future_spend"].sum() > labels_before["future_spend"].sum()
    assert set(before.columns) >= set(FEATURES)


def test_features_and_labels_by_hand(tmp_path):
    path = tmp_path / "w.duckdb"
    build_synthetic_warehouse(path, DS, customers=60, seed=4)
    con = duckdb.connect(str(path))
    con.execute("""
        delete from orders; delete from order_items; delete from customer_events;
        delete from customer_engagement_daily;
        insert into orders values
          ('o1', 'a', 'a', '2025-10-01 10:00', '2025-10-01', 'placed', 'EUR', 100, 1, false),
          ('o2', 'a', 'a', '2025-11-30 10:00', '2025-11-30', 'placed', 'EUR', 50, 1, false),
          ('o3', 'a', 'a', '2025-11-30 11:00', '2025-11-30', 'cancelled', 'EUR', 999, 1, false),
          ('o4', 'b', 'b', '2025-06-01 00:00', '2025-06-01', 'placed', 'EUR', 10, 1, false),
          ('o5', 'b', 'b', '2025-12-10 00:00', '2025-12-10', 'placed', 'EUR', 500, 1, false);
        insert into customer_engagement_daily values
          ('a', '2025-11-28', 0, 2, 1, 0, 0, 0, 0, 1, 0),
          ('a', '2025-09-15', 0, 5, 0, 0, 0, 0, 0, 3, 1),
          ('a', '2025-12-01', 0, 9, 9, 0, 0, 0, 0, 9, 9);
    """)
    feats = build_features(con, date(2025, 12, 1)).set_index("unified_id")
    labels = build_labels(con, date(2025, 12, 1), 30).set_index("unified_id")
    con.close()
    a = feats.loc["a"]
    assert a["frequency"] == 2 and a["monetary"] == 150  # cancelled order ignored
    assert a["recency_days"] == pytest.approx(14 / 24)
    assert a["inter_purchase_days_mean"] == pytest.approx(60.0)
    assert a["spend_last_90"] == 150 and a["spend_prev_90"] == 0
    assert (a["product_views_7"], a["product_views_90"], a["email_opens_90"]) == (2, 7, 4)
    assert a["email_clicks_30"] == 0 and a["email_clicks_90"] == 1
    assert a["days_since_last_activity"] == 3
    assert feats.loc["b", "frequency"] == 1  # the December order is after the cutoff
    assert bool(labels.loc["a", "is_churned"]) and not bool(labels.loc["b", "is_churned"])
    assert bool(labels.loc["b", "is_vip"]) and not bool(labels.loc["a", "is_vip"])


def test_money_features_are_exact_sums(tmp_path):
    """DuckDB adds a group's doubles in whatever order its threads hand them over, so double
    sums varied in the last bits from run to run, now and then across the features' rounding
    to six decimals (a retrained model then got another data hash and version). Exact sums
    cannot vary: ten orders of 0.10 add up to 1.00, not 0.9999999999999999."""
    path = tmp_path / "w.duckdb"
    build_synthetic_warehouse(path, DS, customers=20, seed=4)
    con = duckdb.connect(str(path))
    con.execute("delete from orders; delete from order_items")
    for i in range(10):
        con.execute("insert into orders values ($o, 'a', 'a', $at, $at::date, 'placed', 'EUR', "
                    "0.1, 1, false)", {"o": f"o{i}", "at": datetime(2025, 11, 1 + i)})
    con.execute("insert into order_items select order_id, 1, unified_id, 'SKU1', 'shoes', 1, "
                "total_amount, total_amount, ordered_at, status from orders")
    raw = con.execute(FEATURES_SQL, {"cutoff": date(2025, 12, 1), "sample": None}).df()
    con.close()
    assert float(raw.loc[0, "monetary"]) == 1.0 and float(raw.loc[0, "spend_last_90"]) == 1.0
    assert float(raw.loc[0, "avg_order_value"]) == 0.1


def test_score_on_fresh_install_trains_first_and_models_beat_baselines(scoring_home):
    settings, _, report = scoring_home
    assert report.details["training"]["why"].startswith("no churn model")
    for name in ("churn", "vip"):
        model = report.details["training"]["models"][name]
        assert model["approved"], model
        assert all(model["roc_auc"] > b for b in model["baseline_roc_auc"].values())
        assert report.details[f"{name}_model"]["why"] == "latest approved version"


def test_registry_writes_version_metadata_and_card(scoring_home):
    settings, _, report = scoring_home
    version = report.details["training"]["version"]
    assert version.startswith("20260331-")
    for name in ("churn", "vip"):
        folder = settings.models_dir / name / version
        meta = json.loads((folder / "metadata.json").read_text())
        assert (folder / "model.joblib").stat().st_size > 0
        assert meta["approved"] is True and meta["features"] == FEATURES
        assert set(meta["baselines"]) == {"recency_only", "rfm_score"}
        assert {"roc_auc", "pr_auc", "brier", "top_decile_lift"} <= set(meta["metrics"])
        assert meta["validation_cutoff"] > max(meta["training_cutoffs"])
        assert len(meta["data_hash"]) == 64 and version.endswith(meta["data_hash"][:12])
        assert "Validation" in (folder / "model_card.md").read_text()
    nbp = json.loads((settings.models_dir / "next_best_product" / version / "metadata.json")
                     .read_text())
    assert nbp["evaluation"]["evaluated_persons"] > 50


def test_scores_file_has_the_contract_columns(scoring_home):
    settings, _, _ = scoring_home
    scores = _scores(settings)
    assert list(scores.columns) == CONTRACT
    assert scores["unified_id"].is_unique and len(scores) == 3000
    buyers = scores["p_churn"].notna()
    assert 0.8 < buyers.mean() < 0.95  # prospects (no order yet) get no probabilities
    for col in ("p_vip", "p_churn"):
        assert scores.loc[buyers, col].between(0, 1).all()
    assert (scores["scored_at"] == datetime(2026, 3, 31, 23, 59, 59)).all()
    assert scores["best_send_hour"].between(0, 23).all()
    assert (scores["next_best_products"].map(len) == 3).all()
    schema = pq.read_schema(scores_path(settings, DS))
    assert str(schema.field("next_best_products").type) == "list<element: string>"


def test_rerun_gives_identical_scores_and_versions(scoring_home, tmp_path):
    settings, _, first = scoring_home
    before = _scores(settings)
    again = score(DS, settings)
    assert "training" not in again.details  # the model is fresh: no retraining
    pd.testing.assert_frame_equal(before, _scores(settings))
    # Features and predictions in their own thread or before the rest: the same file. Parts
    # that ran side by side report their CPU together; one after the other, each its own.
    assert set(again.details["cpu_seconds_by_part"]) == {"overlapped", "join", "keep_state"}
    sequential = score(DS, settings, overlap=False)
    pd.testing.assert_frame_equal(before, _scores(settings))
    assert set(sequential.details["cpu_seconds_by_part"]) == set(sequential.details["seconds_by_part"])
    # Retraining the same date on the same data gives the same version.
    copy = load_settings(home=tmp_path)
    shutil.copy(settings.warehouse_path, copy.warehouse_path)
    assert train(DS, copy).details["version"] == first.details["training"]["version"]


def test_a_failure_beside_the_recommendations_fails_the_night_and_keeps_the_scores(
        scoring_home, monkeypatch):
    """An error in the features thread reaches the caller (no hang, no partial file) and the
    night's scores file stays as it was."""
    score_module = importlib.import_module("personalization.scoring.score")
    settings, _, _ = scoring_home
    before = _scores(settings)

    def broken(*args, **kwargs):
        raise ScoringError("features failed")

    monkeypatch.setattr(score_module, "build_features", broken)
    with pytest.raises(ScoringError, match="features failed"):
        score(DS, settings)
    pd.testing.assert_frame_equal(before, _scores(settings))


def test_recommendations_exclude_bought_items_and_beat_popularity(scoring_home):
    settings, _, report = scoring_home
    scores = _scores(settings)[["unified_id", "next_best_products"]]
    recs = scores.explode("next_best_products").rename(columns={"next_best_products": "sku"})
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    bought = con.execute("select distinct unified_id, sku from order_items "
                         "where status = 'placed'").df()
    con.close()
    assert recs.merge(bought, on=["unified_id", "sku"]).empty
    nbp = report.details["training"]["next_best_product"]
    assert nbp["hit_rate"] > nbp["popularity_hit_rate"] + 0.1, nbp


def test_best_send_hour_finds_the_planted_hour(scoring_home):
    settings, truth, _ = scoring_home
    scores = _scores(settings).set_index("unified_id")
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    active = con.execute("""
        select unified_id from customer_events
        where event_type in ('email_open', 'email_click') and occurred_at >= '2025-04-01'
        group by all having count(*) >= 10""").df()["unified_id"]
    con.close()
    assert len(active) > 200
    hit = scores.loc[active, "best_send_hour"] == truth.preferred_hour[active]
    assert hit.mean() > 0.9


def test_probabilities_from_the_binned_trees_are_sklearns_to_the_bit(scoring_home):
    """models.boosting_probability walks the trees on binned features: the same bits as the
    pipeline's own predict_proba, with missing, unseen and out-of-range values too."""
    import numpy as np

    from personalization.scoring.models import boosting_probability

    settings, _, _ = scoring_home
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    features = build_features(con, DS + timedelta(days=1))[FEATURES]
    con.close()
    features.loc[features.index[:50], "device"] = "never-seen"
    features.loc[features.index[50:100], "recency_days"] = np.nan
    features.loc[features.index[100:150], "monetary"] = 1e12
    for name in ("vip", "churn"):
        meta, _ = registry.select_version(settings.models_dir, name, DS)
        pipeline = registry.load_estimator(settings.models_dir, name, meta["version"]).model
        assert np.array_equal(boosting_probability(pipeline, features),
                              pipeline.predict_proba(features)[:, 1])


def test_too_little_history_writes_null_scores(tmp_path):
    settings = load_settings(home=tmp_path)
    build_synthetic_warehouse(settings.warehouse_path, DS, customers=80, days=60, seed=5)
    report = score(DS, settings)
    assert report.status == "warning"
    assert report.details["null_probabilities_because"].startswith("too little history")
    scores = _scores(settings)
    assert len(scores) == 80 and scores["p_churn"].isna().all() and scores["p_vip"].isna().all()
    assert scores["churn_model_version"].isna().all()
    assert scores["best_send_hour"].notna().all()


def _fake_version(models_dir, model, trained: date, approved: bool, tag: str) -> str:
    version = registry.make_version(trained, tag * 12)
    registry.save_version(models_dir, model, version,
                          {"model": model, "version": version, "trained_ds": trained.isoformat(),
                           "approved": approved, "approval_reason": "test"}, "# card")
    return version


def test_selection_prefers_approved_and_never_uses_future_models(tmp_path):
    old = _fake_version(tmp_path, "churn", date(2026, 3, 1), True, "a")
    newer = _fake_version(tmp_path, "churn", date(2026, 3, 8), False, "b")
    _fake_version(tmp_path, "churn", date(2026, 4, 1), True, "c")
    chosen, why = registry.select_version(tmp_path, "churn", date(2026, 3, 10))
    assert chosen["version"] == old and why == "latest approved version"
    assert registry.select_version(tmp_path, "churn", date(2026, 2, 1))[0] is None
    _fake_version(tmp_path, "vip", date(2026, 3, 8), False, "d")
    chosen, why = registry.select_version(tmp_path, "vip", date(2026, 3, 10))
    assert chosen["approved"] is False and "no approved version" in why
    assert newer != old


def test_retraining_is_due_after_retrain_every_days(tmp_path):
    settings = load_settings(home=tmp_path, retrain_every_days=7)
    for model in ("churn", "vip"):
        _fake_version(settings.models_dir, model, date(2026, 3, 1), True, "e")
    assert training_needed(date(2026, 3, 7), settings) is None
    assert "8 days old" in training_needed(date(2026, 3, 1) + timedelta(days=8), settings)


def test_failed_retraining_keeps_scoring_with_the_existing_model(scoring_home, monkeypatch):
    settings, _, first = scoring_home
    due = load_settings(home=settings.home, retrain_every_days=1)

    def broken_train(ds, settings):
        raise ValueError("boom")

    # The package exports the function `score`, which hides the module of the same name.
    monkeypatch.setattr(importlib.import_module("personalization.scoring.score"), "train",
                        broken_train)
    report = score(DS + timedelta(days=1), due)
    assert report.details["training"]["status"] == "failed"
    assert report.details["churn_model"]["version"] == first.details["training"]["version"]
    assert _scores(due, DS + timedelta(days=1))["p_churn"].notna().any()


def test_training_sample_keeps_whole_persons_deterministically(tmp_path):
    from personalization.scoring.features import build_training_frame, count_training_rows
    from personalization.scoring.train import sample_share

    path = tmp_path / "w.duckdb"
    build_synthetic_warehouse(path, DS, customers=400, seed=3)
    con = duckdb.connect(str(path), read_only=True)
    cutoffs = [date(2025, 10, 1), date(2025, 12, 1)]
    full = build_training_frame(con, cutoffs, 90)
    assert count_training_rows(con, cutoffs) == len(full)
    assert sample_share(len(full), len(full)) is None  # under the cap: everyone
    share = sample_share(len(full), len(full) // 4)
    sample = build_training_frame(con, cutoffs, 90, share)
    again = build_training_frame(con, cutoffs, 90, share)
    con.close()
    assert 0.1 * len(full) < len(sample) < 0.45 * len(full)
    pd.testing.assert_frame_equal(sample, again)  # same rows every run
    # A sampled person keeps every cut-off they have, with the features they have unsampled.
    per_person = sample.groupby("unified_id")["cutoff"].nunique()
    assert per_person.equals(full.groupby("unified_id")["cutoff"].nunique()[per_person.index])
    both = sample.merge(full, on=["unified_id", "cutoff"], suffixes=("", "_full"))
    assert len(both) == len(sample)
    for column in FEATURES:
        assert both[column].equals(both[f"{column}_full"].rename(column)), column


def _night_of_changes(path, night: date, n: int) -> dict[str, str]:
    """Tonight's changes in a built synthetic warehouse: product views, email opens and orders
    delivered on `night`, a new product and one (de)activated,
    an identity merge (a buyer's rows move to another person), an order cancelled, a person
    erased; the engagement mart is rebuilt from the events. Returns who was touched."""
    from synthetic_warehouse import ENGAGEMENT_SQL

    con = duckdb.connect(str(path))
    buyers = [r[0] for r in con.execute(
        "select unified_id from orders where status = 'placed' group by all "
        "having count(*) >= 2 order by unified_id").fetchall()]
    merged, into, cancelled, erased = buyers[3 * n], buyers[3 * n + 1], buyers[3 * n + 2], buyers[-1 - n]
    at = datetime.combine(night, datetime.min.time()) + timedelta(hours=10)
    params = {"night": night.isoformat(), "at": at}
    con.execute("""
        insert into customer_events
        select 'new-' || $night || '-' || unified_id, unified_id, $at::timestamp,
               'product_view', s.sku, s.category, null, null, 'mobile', $night::date
        from (select unified_id from customer_profiles order by hash(unified_id, $night) limit 40)
        cross join (select sku, category from products order by hash(sku, $night) limit 2) as s
    """, params)
    # The catalogue changes: a new product, one product (de)activated. The new sku sorts
    # before every other ('A' < 'S'), so every kept sku number moves (sku_numbers.py).
    con.execute("insert into products values ('ANEW-' || $night, 'New', "
                "(select min(category) from products), 10.0, true)", {"night": night.isoformat()})
    con.execute("update products set is_active = not coalesce(is_active, true) where sku = "
                "(select sku from products order by hash(sku, $night, 4) limit 1)",
                {"night": night.isoformat()})
    # Email opens delivered tonight, half of them a day late (21:00 the evening before).
    con.execute("""
        insert into customer_events
        select 'open-' || $night || '-' || unified_id, unified_id,
               $at::timestamp - to_hours(13 * (hash(unified_id) % 2)::int), 'email_open',
               null, null, 'c-' || $night, null, 'mobile', $night::date
        from (select unified_id from customer_profiles order by hash(unified_id, $night, 3) limit 30)
    """, params)
    con.execute("""
        insert into orders
        select 'o-' || $night || '-' || unified_id, unified_id, unified_id, $at::timestamp,
               $at::date, 'placed', 'EUR', 20.0, 1, false
        from (select unified_id from customer_profiles order by hash(unified_id, $night, 2) limit 15)
    """, params)
    con.execute("""
        insert into order_items
        select order_id, 1, unified_id, (select sku from products order by hash(sku, $night) limit 1),
               (select category from products order by hash(sku, $night) limit 1),
               1, 20.0, 20.0, ordered_at, status
        from orders where order_id like 'o-' || $night || '-%'
    """, {"night": night.isoformat()})
    for table in ("customer_events", "orders", "order_items"):
        con.execute(f"update {table} set unified_id = $into where unified_id = $merged",
                    {"into": into, "merged": merged})
    con.execute("delete from customer_profiles where unified_id = $merged", {"merged": merged})
    con.execute("insert into identity_merges values ($merged, $into, $night::date)",
                {"merged": merged, "into": into, "night": night.isoformat()})
    # A cookie re-assigned (no merge): one old product view moves from one person to another.
    giver, taker = buyers[-5 - 2 * n], buyers[-6 - 2 * n]
    con.execute("""
        update customer_events set unified_id = $taker
        where event_id = (select min(event_id) from customer_events
                          where unified_id = $giver and event_type = 'product_view'
                            and occurred_at >= $at::timestamp - interval 300 day)
    """, {"giver": giver, "taker": taker, "at": at})
    order = con.execute("select min(order_id) from orders where unified_id = $c and status = 'placed'",
                        {"c": cancelled}).fetchone()[0]
    for table in ("orders", "order_items"):
        con.execute(f"update {table} set status = 'cancelled' where order_id = $o", {"o": order})
    con.execute("update customer_profiles set is_erased = true where unified_id = $e", {"e": erased})
    con.execute(f"create or replace table customer_engagement_daily as {ENGAGEMENT_SQL}")
    con.close()
    return {"merged": merged, "into": into, "cancelled": cancelled, "erased": erased}


# A person's kept views as rows (the lists' order is not part of the state: a night appends)
# with skus, not their numbers (a night's numbers depend on the skus it has seen).
def _kept_view_rows(settings, folder) -> str:
    return view_rows_sql(read_parquet_sql(settings, folder / RECO_VIEWS_FILE, NO_HIVE),
                         read_parquet_sql(settings, folder / RECO_SKUS_FILE, NO_HIVE))


def _full_recompute(settings, night: date, kept) -> dict[str, pd.DataFrame]:
    """Recommendations, their kept state and views, and send hours with their histograms and
    sums of everyone at `night`, recomputed from every event against the item neighbours and
    catalogue kept in `kept`."""
    def kept_sql(name: str, where: str = "") -> str:
        return f"select * from {read_parquet_sql(settings, kept / name, NO_HIVE)} {where}"

    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    everyone = {"state_sql": kept_sql(RECO_STATE_FILE, "where false"),
                "views_sql": kept_sql(RECO_VIEWS_FILE, "where false"),
                "since": night - timedelta(days=1),
                "neighbours_sql": kept_sql(RECO_NEIGHBOURS_FILE),
                "catalogue_sql": kept_sql(RECO_CATALOGUE_FILE),
                "skus_sql": kept_sql(RECO_SKUS_FILE)}
    table, full = build_recommendations_kept(con, night + timedelta(days=1), settings.next_best_products_count,
                                             POPULATION_SQL, everyone, target="everyone")
    assert full["recomputed"] == full["persons"]
    hours_table, _ = build_send_hours(con, night + timedelta(days=1), POPULATION_SQL, target="everyone_hours")
    frames = {
        "persons": full["persons"],
        "lists": con.execute(f"select unified_id, next_best_products from {table} order by unified_id").df(),
        "state": con.execute("select * from everyone_state order by unified_id").df(),
        "views": con.execute(view_rows_sql("everyone_views_state", "everyone_skus")
                             + " order by all").df(),
        "hours": con.execute(f"select unified_id, best_send_hour from {hours_table} order by unified_id").df(),
        "hist": con.execute("select * from everyone_hours_hist order by unified_id, activity_on, send_hour").df(),
        "sums": con.execute("select * from everyone_hours_sums order by unified_id").df()}
    con.close()
    return frames


def _assert_scored_as_everyone(settings, night: date,
                               expected: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The night's scores and kept files equal a recompute of everyone; returns the scores and
    the kept files."""
    scores = _scores(settings, night)
    got = scores[scores["next_best_products"].map(len) > 0][["unified_id", "next_best_products"]]
    assert len(expected["lists"]) > 2000
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected["lists"])
    con = duckdb.connect()
    folder = scores_path(settings, night).parent
    written = {name: con.execute(f"select * from {relation} order by {order}").df()
               for name, relation, order in (
                   ("state", read_parquet_sql(settings, folder / RECO_STATE_FILE, NO_HIVE),
                    "unified_id"),
                   ("views", f"({_kept_view_rows(settings, folder)})", "all"),
                   ("hist", read_parquet_sql(settings, folder / SEND_HOURS_FILE, NO_HIVE),
                    "unified_id, activity_on, send_hour"),
                   ("sums", read_parquet_sql(settings, folder / SEND_SUMS_FILE, NO_HIVE),
                    "unified_id"))}
    con.close()
    for name, frame in written.items():
        pd.testing.assert_frame_equal(frame, expected[name], obj=name)
    pd.testing.assert_frame_equal(
        scores[["unified_id", "best_send_hour"]].reset_index(drop=True), expected["hours"])
    assert len(expected["sums"]) > 1000 and len(expected["views"]) > 1000
    return scores, written


def test_nightly_recommendations_recompute_only_changed_persons_and_equal_a_full_recompute(
        scoring_home, tmp_path):
    source, _, _ = scoring_home
    settings = load_settings(home=tmp_path)
    shutil.copy(source.warehouse_path, settings.warehouse_path)
    shutil.copytree(source.models_dir, settings.models_dir)
    first = score(DS, settings)
    assert first.details["recommendations"]["mode"] == "full"
    assert "training" not in first.details
    for n, night in enumerate((DS + timedelta(days=1), DS + timedelta(days=2))):
        touched = _night_of_changes(settings.warehouse_path, night, n)
        report = score(night, settings)
        reco = report.details["recommendations"]
        assert reco["mode"] == "incremental", reco
        # 40 viewers, 15 buyers, the merged and cancelled persons, those with a view or an
        # order line leaving the 365-day lookback tonight (two years of history), those the
        # catalogue change may concern: not everyone.
        assert 40 <= reco["recomputed"] <= 0.15 * reco["persons"], reco
        # Views are the kept ones (the merged person's joining the survivor's) plus tonight's
        # delivery, except for the two persons a view moved between without a merge: theirs
        # are read from every event.
        assert reco["views_read_from_events_for"] == 2, reco
        # Every person recomputed against the same item neighbours gives the same lists;
        # send hours: kept histograms plus tonight's opens without those a year old, except
        # for persons whose opens moved (the merge), read from every event; the same as
        # reading every event for everyone.
        expected = _full_recompute(settings, night, scores_path(settings, night - timedelta(days=1)).parent)
        assert expected["persons"] == reco["persons"]
        scores, written = _assert_scored_as_everyone(settings, night, expected)
        hours = report.details["send_hours"]
        assert hours["mode"] == "incremental" and hours["read_from_events_for"] <= 2, hours
        state, views = written["state"], written["views"]
        for gone in (touched["merged"], touched["erased"]):
            assert gone not in set(scores["unified_id"]) and gone not in set(state["unified_id"])
            assert gone not in set(views["unified_id"])
    rebuilt = score(DS + timedelta(days=2), settings, full=True)
    assert rebuilt.details["recommendations"]["mode"] == "full"
    # Erasure's redaction of the scores folders (privacy/erasure.py) reaches every kept
    # per-person file; the others hold no person.
    from personalization.privacy import redact

    folder = scores_path(settings, DS + timedelta(days=2)).parent
    con = duckdb.connect()
    person = con.execute(
        f"select min(unified_id) from {read_parquet_sql(settings, folder / RECO_VIEWS_FILE, NO_HIVE)}"
        f" where unified_id in (select unified_id from "
        f"{read_parquet_sql(settings, folder / SEND_HOURS_FILE, NO_HIVE)})").fetchone()[0]
    con.execute("create table keys as select 'unified' as key_kind, "
                "sha256('unified:' || $p) as key_sha256", {"p": person})
    changed = {c["path"].rsplit("/", 1)[-1] for c in redact.parquet_files(
        con, settings, sorted(folder.glob("*.parquet")), "keys")}
    assert changed >= {"customer_scores.parquet", RECO_STATE_FILE, RECO_VIEWS_FILE,
                       SEND_HOURS_FILE, SEND_SUMS_FILE}
    for path in folder.glob("*.parquet"):
        columns = con.execute(f"select * from {read_parquet_sql(settings, path, NO_HIVE)} "
                              "limit 0").df().columns
        assert "unified_id" in columns or path.name in (
            RECO_NEIGHBOURS_FILE, RECO_CATALOGUE_FILE, RECO_SKUS_FILE)
        if "unified_id" in columns:
            assert con.execute(f"select count(*) from {read_parquet_sql(settings, path, NO_HIVE)} "
                               "where unified_id = $p", {"p": person}).fetchone()[0] == 0
    con.close()


def test_a_night_after_one_without_scores_equals_a_full_recompute(scoring_home, tmp_path):
    """A night whose scoring failed keeps no state: the next night builds on the one before
    (two nights of deliveries, merges and moves since) and still gives everyone's recompute."""
    source, _, _ = scoring_home
    settings = load_settings(home=tmp_path)
    shutil.copy(source.warehouse_path, settings.warehouse_path)
    shutil.copytree(source.models_dir, settings.models_dir)
    score(DS, settings)
    _night_of_changes(settings.warehouse_path, DS + timedelta(days=1), 0)  # its scoring failed
    night = DS + timedelta(days=2)
    _night_of_changes(settings.warehouse_path, night, 1)
    report = score(night, settings)
    reco, hours = report.details["recommendations"], report.details["send_hours"]
    # Only the persons a view or an open moved between without a merge (two each night) are
    # read from every event: both nights' merges join the kept state.
    assert reco["mode"] == "incremental" and reco["views_read_from_events_for"] == 4, reco
    assert hours["mode"] == "incremental" and hours["read_from_events_for"] <= 4, hours
    _assert_scored_as_everyone(settings, night, _full_recompute(settings, night, scores_path(settings, DS).parent))


def test_night_kept_on_a_warehouse_holding_later_deliveries_reads_no_event_twice(
        scoring_home, tmp_path):
    """A night scored on a warehouse already holding part of the next delivery (a rerun, a
    late start) keeps state with it: the next night adds only what the kept night did not see
    (db.events_since_kept_sql), so nobody's views or opens count twice or are missed, and
    nobody is read from every event. Late events (delivered the next day), events of a clock
    ahead (delivered the day before they happened) and the next day's own events."""
    from synthetic_warehouse import ENGAGEMENT_SQL

    from personalization.scoring.recommend import LOOKBACK_DAYS
    from personalization.scoring.viewed import build_views

    source, _, _ = scoring_home
    settings = load_settings(home=tmp_path)
    shutil.copy(source.warehouse_path, settings.warehouse_path)
    shutil.copytree(source.models_dir, settings.models_dir)
    night = DS + timedelta(days=1)
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("""
        insert into customer_events
        select kind || '-' || event_type || '-' || unified_id, unified_id, happened_at, event_type,
               case when event_type = 'product_view' then s.sku end,
               case when event_type = 'product_view' then s.category end,
               null, null, 'mobile', delivered_on
        from (select unified_id from customer_profiles order by hash(unified_id, 7) limit 60)
        cross join (values ('late', timestamp '2026-03-31 22:00', date '2026-04-01'),
                           ('ahead', timestamp '2026-04-01 09:00', date '2026-03-31'),
                           ('next', timestamp '2026-04-01 11:00', date '2026-04-01'))
            as w(kind, happened_at, delivered_on)
        cross join (values ('product_view'), ('email_open')) as e(event_type)
        cross join (select sku, category from products order by hash(sku) limit 1) as s
    """)
    con.execute(f"create or replace table customer_engagement_daily as {ENGAGEMENT_SQL}")
    con.close()
    assert score(DS, settings).details["recommendations"]["mode"] == "full"
    report = score(night, settings)
    reco, hours = report.details["recommendations"], report.details["send_hours"]
    assert reco["mode"] == "incremental" and reco["recomputed"] >= 60, reco
    assert reco["views_read_from_events_for"] == 0, reco
    assert hours["mode"] == "incremental" and hours["read_from_events_for"] == 0, hours
    folder = scores_path(settings, night).parent
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    build_views(con, "everyone", {"cutoff": night + timedelta(days=1), "lookback": LOOKBACK_DAYS})
    expected_views = con.execute(
        "select v.unified_id, k.sku, v.last_viewed_at from everyone_views as v "
        f"inner join everyone_skus as k on v.sid = k.sid where v.unified_id in ({POPULATION_SQL}) "
        "order by all").df()
    views = con.execute(_kept_view_rows(settings, folder) + " order by all").df()
    build_send_hours(con, night + timedelta(days=1), POPULATION_SQL, target="everyone_hours")
    expected_hist = con.execute("select * from everyone_hours_hist order by all").df()
    hist = con.execute("select * from " + read_parquet_sql(settings, folder / SEND_HOURS_FILE,
                                                           NO_HIVE) + " order by all").df()
    con.close()
    assert len(expected_views) > 1000 and len(expected_hist) > 1000
    pd.testing.assert_frame_equal(views, expected_views)
    pd.testing.assert_frame_equal(hist, expected_hist)


def test_recommendation_ties_break_by_sku_and_category_name():
    """Equal neighbour scores rank by sku, equal category weights pick the first category, by
    string order (recommend.py numbers skus and categories in that order: 'p10' < 'p2')."""
    from personalization.scoring.recommend import build_recommendations

    con = duckdb.connect()
    con.execute("create table products as select * from (values ('a1', 'toys', true), "
                "('p2', 'toys', true), ('p10', 'toys', true), ('e1', 'books', true)) "
                "as t(sku, category, is_active)")
    # u1 and u2 buy a1, p2 and p10 (p2 and p10 are a1's neighbours with equal similarity);
    # u3 buys e1; t views a1 and e1 once each (toys and books weigh the same for t).
    con.execute("create table order_items as select unified_id, sku, 'placed' as status, "
                "timestamp '2026-08-20 10:00' as ordered_at from (values ('u1', 'a1'), "
                "('u1', 'p2'), ('u1', 'p10'), ('u2', 'a1'), ('u2', 'p2'), ('u2', 'p10'), "
                "('u3', 'e1')) as o(unified_id, sku)")
    con.execute("create table customer_events as select 't' as unified_id, sku, "
                "'product_view' as event_type, timestamp '2026-08-25 10:00' as occurred_at "
                "from (values ('a1'), ('e1')) as v(sku)")
    table = build_recommendations(con, date(2026, 9, 2), 4, "select 't' as unified_id")
    row = con.execute(f"select next_best_products, sources from {table}").fetchall()
    # neighbours p10 before p2, then books' best seller, then the overall ones left (a1).
    assert row == [(["p10", "p2", "e1", "a1"], [1, 1, 2, 3])]


def test_recent_items_are_ordered_by_the_latest_purchase_or_view(monkeypatch):
    """A product bought after it was viewed counts from the purchase, and weighs 3
    (recommend.py joins the order lines to the views): with two recent items, t's are a1
    (viewed early, bought last) and b1, so the candidates are a1's and b1's neighbours, not
    c1's (rc), and a1's ranks first though 'ab' < 'pa'."""
    from personalization.scoring import recommend

    monkeypatch.setattr(recommend, "RECENT_ITEMS", 2)
    con = duckdb.connect()
    con.execute("create table products as select sku, 'toys' as category, true as is_active "
                "from (values ('a1'), ('b1'), ('c1'), ('pa'), ('ab'), ('rc')) as p(sku)")
    # Pairs bought together by two persons each: a1-pa, b1-ab, c1-rc; t buys a1 last.
    con.execute("create table order_items as select unified_id, sku, 'placed' as status, "
                "happened_at as ordered_at from (values ('u1', 'a1', timestamp '2026-08-01'), "
                "('u1', 'pa', timestamp '2026-08-01'), ('u2', 'a1', timestamp '2026-08-01'), "
                "('u2', 'pa', timestamp '2026-08-01'), ('u3', 'b1', timestamp '2026-08-01'), "
                "('u3', 'ab', timestamp '2026-08-01'), ('u4', 'b1', timestamp '2026-08-01'), "
                "('u4', 'ab', timestamp '2026-08-01'), ('u5', 'c1', timestamp '2026-08-01'), "
                "('u5', 'rc', timestamp '2026-08-01'), ('u6', 'c1', timestamp '2026-08-01'), "
                "('u6', 'rc', timestamp '2026-08-01'), ('t', 'a1', timestamp '2026-08-20')) "
                "as o(unified_id, sku, happened_at)")
    con.execute("create table customer_events as select 't' as unified_id, sku, "
                "'product_view' as event_type, happened_at as occurred_at from (values "
                "('a1', timestamp '2026-08-01'), ('b1', timestamp '2026-08-10'), "
                "('c1', timestamp '2026-08-05')) as v(sku, happened_at)")
    table = recommend.build_recommendations(con, date(2026, 9, 2), 2, "select 't' as unified_id")
    assert con.execute(f"select next_best_products, sources from {table}").fetchall() == [
        (["pa", "ab"], [1, 1])]

"""`score(ds, settings)`: write `<scores_dir>/ds=<ds>/customer_scores.parquet`.

One vectorised pass: features for everyone in DuckDB SQL, one `predict_proba` per model,
recommendations and send hours as SQL temp tables, one join, one Arrow write (temp file +
rename). Everything is a function of `ds` and the warehouse, so a rerun gives the same file.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

import pyarrow as pa

from personalization.config import Settings
from personalization.exceptions import ScoringError
from personalization.observability import StepReport, log_event, tree_rss_bytes
from personalization.privacy import encryption
from personalization.scoring import kept_state, registry
from personalization.scoring.db import connect_read_only
from personalization.scoring.features import build_features, profiles_current
from personalization.scoring.models import LABELS, predict
from personalization.scoring.recommend import build_recommendations_kept
from personalization.scoring.send_hour import build_send_hours
from personalization.scoring.train import train

logger = logging.getLogger(__name__)

SCORES_FILE = "customer_scores.parquet"
# Erased persons keep a profile row but get no scores (nothing about them leaves again).
POPULATION_SQL = ("select unified_id from customer_profiles "
                  "where unified_id is not null and not coalesce(is_erased, false)")
SCHEMA = pa.schema([
    ("unified_id", pa.string()),
    ("p_vip", pa.float64()),
    ("p_churn", pa.float64()),
    ("vip_model_version", pa.string()),
    ("churn_model_version", pa.string()),
    ("scored_at", pa.timestamp("us")),
    ("next_best_products", pa.list_(pa.string())),
    ("best_send_hour", pa.int32()),
])
_COLUMN = {"vip": "p_vip", "churn": "p_churn"}


def scores_path(settings: Settings, ds: date) -> Path:
    """Where scoring writes the scores for `ds`."""
    return Path(settings.scores_dir) / f"ds={ds.isoformat()}" / SCORES_FILE


def scored_at(ds: date) -> datetime:
    """The end of `ds` (UTC, naive): scores describe the state after that day, not the clock."""
    return datetime.combine(ds, clock(23, 59, 59))


def training_needed(ds: date, settings: Settings) -> str | None:
    """Why the models must be (re)trained before scoring `ds`, or None."""
    for name in LABELS:
        versions = [v for v in registry.list_versions(settings.models_dir, name, ds)
                    if v.get("has_model", True)]
        if not versions:
            return f"no {name} model trained on or before {ds}"
        age = (ds - date.fromisoformat(versions[-1]["trained_ds"])).days
        if age >= settings.retrain_every_days:
            return (f"latest {name} model ({versions[-1]['version']}) is {age} days old; "
                    f"retrain_every_days={settings.retrain_every_days}")
    return None


def score(ds: date, settings: Settings, full: bool = False, *,
          overlap: bool = True) -> StepReport:
    """Score every (non-erased) person as of the end of `ds`.

    Recommendations are recomputed only for persons whose inputs changed since the latest
    earlier night that kept its state (the rest keep their inputs; every list is refilled
    from tonight's best sellers); the item neighbours are rebuilt, and everyone recomputed,
    when `full`, when no state is kept, when the parameters changed, or
    when the kept neighbours are `retrain_every_days` old. Product views (for them) and send
    hours (for everyone) are built from the latest earlier night's kept state plus the
    deliveries since (kept_state.py; docs/models.md).

    Trains first when no model exists or the newest is older than `retrain_every_days`.
    Uses the latest approved version trained on or before `ds` (or, when none is approved,
    the latest one, with a warning). With too little history to train, writes the file
    with null probabilities and says why in `details`.

    Features and predictions run in a second thread beside the recommendations and send
    hours; `overlap=False` runs one after the other, so that the process's CPU seconds of
    each part (`cpu_seconds_by_part`) are that part's alone (benchmarks/scoring_stages.py);
    overlapped, the four parts' CPU is one figure (`overlapped`). `seconds_by_part` holds
    each part's own wall seconds either way.

    Returns:
        A StepReport: rows_in = persons, rows_out = rows written; details hold the model
        versions used, training done on the way, and the output path.
    """
    start = time.perf_counter()
    report = StepReport(step="score", ds=ds.isoformat())
    details: dict = {}
    reason = training_needed(ds, settings)
    if reason:
        log_event(logger, "training_before_scoring", ds=ds.isoformat(), reason=reason)
        try:
            trained = train(ds, settings)
        except (ScoringError, ValueError) as e:
            # A failed weekly retrain must not stop tonight's scores when a model exists.
            if any(registry.select_version(settings.models_dir, m, ds)[0] is None for m in LABELS):
                raise ScoringError(f"training before scoring {ds} failed: {e}") from e
            log_event(logger, "retraining_failed", level=logging.WARNING, ds=ds.isoformat(),
                      error=str(e))
            trained = StepReport(step="train", ds=ds.isoformat(), status="failed",
                                 details={"reason": str(e)})
        details["training"] = {"why": reason, "status": trained.status,
                               **{k: v for k, v in trained.details.items()
                                  if k in ("version", "models", "next_best_product")}}
        if trained.status in ("skipped", "failed"):
            details["training"]["skipped_because"] = trained.details.get("reason")

    chosen: dict[str, dict | None] = {}
    for name in LABELS:
        meta, why = registry.select_version(settings.models_dir, name, ds)
        chosen[name] = meta
        details[f"{name}_model"] = {"version": meta and meta["version"], "why": why}
        if meta is None or not meta.get("approved"):
            report.status = "warning"
            details.setdefault("warnings", []).append(f"{name} model: {why}")
            log_event(logger, "scoring_model_warning", level=logging.WARNING, model=name,
                      ds=ds.isoformat(), reason=why)

    cutoff = ds + timedelta(days=1)
    parts: dict[str, list[float]] = {}
    con = connect_read_only(settings)
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        # Features and predictions on a second connection while recommendations and send
        # hours run on this one: the model walk is one thread, and DuckDB's stages leave a
        # core idle part of the time (docs/performance.md, "Sixth round").
        side_start = time.process_time()
        scoring = pool.submit(_features_and_predictions, encryption.warehouse_cursor(con, settings),
                              ds, cutoff, chosen, settings, parts)
        if not overlap:
            scoring.result()
        with _timed(parts, "recommendations"):
            previous, why_full = (None, "full rebuild requested") if full else \
                kept_state.previous_reco_state(ds, settings)
            reco, reco_details = build_recommendations_kept(
                con, cutoff, settings.next_best_products_count, POPULATION_SQL, previous)
            reco_details["why_full"] = why_full
            reco_meta = {"neighbours_built_ds": previous["meta"]["neighbours_built_ds"]
                         if previous else ds.isoformat(),
                         **kept_state.reco_parameters(settings)}
        with _timed(parts, "send_hours"):
            hours, hours_details = build_send_hours(
                con, cutoff, POPULATION_SQL,
                previous=None if full else kept_state.previous_send_hour_state(ds, settings))
        features, predictions = scoring.result()
        side_cpu = time.process_time() - side_start
        with _timed(parts, "join"):
            con.register("_predictions", predictions)
            table = con.sql(f"""
                select
                    people.unified_id,
                    s.p_vip,
                    s.p_churn,
                    $vip_version as vip_model_version,
                    $churn_version as churn_model_version,
                    $scored_at::timestamp as scored_at,
                    coalesce(r.next_best_products, []::varchar[]) as next_best_products,
                    h.best_send_hour
                from ({POPULATION_SQL}) as people
                left join _predictions as s on people.unified_id = s.unified_id
                left join {reco} as r on people.unified_id = r.unified_id
                left join {hours} as h on people.unified_id = h.unified_id
                order by people.unified_id
            """, params={"vip_version": chosen["vip"] and chosen["vip"]["version"],
                         "churn_version": chosen["churn"] and chosen["churn"]["version"],
                         "scored_at": scored_at(ds)}).to_arrow_table()
        personal_hours = con.execute(f"select avg(is_personal::int) from {hours}").fetchone()[0]
        path = _write_atomically(table.cast(SCHEMA), scores_path(settings, ds), settings)
        with _timed(parts, "keep_state"):
            kept_state.keep(con, settings, path.parent, reco, reco_meta, hours)
    finally:
        pool.shutdown(wait=True)
        con.close()

    report.rows_in = table.num_rows
    report.rows_out = table.num_rows
    if chosen["churn"] is None or chosen["vip"] is None:
        details["null_probabilities_because"] = details.get("training", {}).get(
            "skipped_because") or "no trained model available for this date"
    details.update({
        "path": str(path), "scored_persons": int(len(features)),
        "recommendations": reco_details, "send_hours": hours_details,
        "seconds_by_part": {k: round(v[0], 2) for k, v in parts.items()},
        "cpu_seconds_by_part": _cpu_by_part(parts, side_cpu if overlap else None),
        "share_personal_send_hour": round(float(personal_hours or 0.0), 4),
        "peak_rss_mb": round(tree_rss_bytes() / 2**20),
    })
    report.details = details
    report.seconds = round(time.perf_counter() - start, 2)
    log_event(logger, "scored", ds=ds.isoformat(), rows_out=report.rows_out,
              scored_persons=len(features), vip=details["vip_model"]["version"],
              churn=details["churn_model"]["version"], seconds=report.seconds)
    return report


@contextmanager
def _timed(into: dict[str, list[float]], name: str):
    """Record `[wall, cpu]` seconds of the block (CPU of every thread: DuckDB's too)."""
    start, cpu = time.perf_counter(), time.process_time()
    yield
    into[name] = [time.perf_counter() - start, time.process_time() - cpu]


def _cpu_by_part(parts: dict[str, list[float]], overlapped: float | None) -> dict[str, float]:
    """CPU seconds by part. Process CPU cannot tell apart parts that ran at the same time:
    with `overlapped` (their CPU together), the parts beside each other are reported as one,
    `overlapped`."""
    cpu = {k: round(v[1], 2) for k, v in parts.items()}
    if overlapped is None:
        return cpu
    side_by_side = ("features", "predict", "recommendations", "send_hours")
    return {"overlapped": round(overlapped, 2),
            **{k: v for k, v in cpu.items() if k not in side_by_side}}


def _features_and_predictions(con, ds: date, cutoff: date, chosen: dict[str, dict | None],
                              settings: Settings, parts: dict[str, list[float]]):
    """Everyone's features as of `cutoff` (the end of `ds`) and their predictions, on `con`
    (closed after)."""
    try:
        with _timed(parts, "features"):
            features = build_features(con, cutoff,
                                      device_from_profile=profiles_current(con, ds))
        with _timed(parts, "predict"):
            return features, _predict(features, chosen, settings)
    finally:
        con.close()


def _predict(features, chosen: dict[str, dict | None], settings: Settings):
    """`unified_id, p_vip, p_churn` for the feature rows (None where no model exists)."""
    predictions = features[["unified_id"]].copy()
    for name, meta in chosen.items():
        if meta is None:
            predictions[_COLUMN[name]] = None
            continue
        estimator = registry.load_estimator(settings.models_dir, name, meta["version"])
        predictions[_COLUMN[name]] = predict(estimator, features)
    return predictions.astype({"p_vip": "float64", "p_churn": "float64"})


def _write_atomically(table: pa.Table, path: Path, settings: Settings) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        encryption.write_arrow(table, tmp, settings)  # plain pq.write_table when off
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ScoringError(f"cannot write scores to {path}: {e}") from e
    return path

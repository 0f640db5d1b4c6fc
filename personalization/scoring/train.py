"""`train(ds, settings)`: build point-in-time training data, fit, validate, register."""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta

from personalization.config import Settings
from personalization.observability import StepReport, log_event, tree_rss_bytes
from personalization.scoring import registry
from personalization.scoring.card import classifier_card, recommender_card
from personalization.scoring.db import connect_read_only
from personalization.scoring.features import FEATURES, build_training_frame, count_training_rows
from personalization.scoring.models import (
    HYPERPARAMETERS,
    LABELS,
    InsufficientDataError,
    data_hash,
    train_and_validate,
)
from personalization.scoring.recommend import (
    FALLBACK_DEPTH,
    LOOKBACK_DAYS,
    NEIGHBOURS,
    POPULARITY_DAYS,
    RECENT_ITEMS,
    evaluate_recommendations,
)

logger = logging.getLogger(__name__)

TRAINING_CUTOFFS = 4
CUTOFF_STEP_DAYS = 30
MIN_HISTORY_DAYS = 60  # a training cut-off needs this much order history before it
RECOMMENDER = "next_best_product"
DEFINITIONS = {
    "churn": "P(a person with >= 1 placed order before the cut-off places no order in the "
             "next {h} days)",
    "vip": "P(a person with >= 1 placed order before the cut-off is in the top 10% of spend "
           "(placed orders) in the next {h} days)",
}


def plan_cutoffs(ds: date, horizon_days: int, first_order_on: date | None) -> tuple[list[date], date]:
    """Training cut-offs (oldest first) and the validation cut-off for training on `ds`.

    The validation cut-off is the latest one whose label window ends with `ds`; training
    cut-offs step back from `horizon` before it, so no training label overlaps validation.

    Raises:
        InsufficientDataError: not enough history for even one training cut-off.
    """
    validation = ds + timedelta(days=1) - timedelta(days=horizon_days)
    latest_train = validation - timedelta(days=horizon_days)
    candidates = [latest_train - timedelta(days=CUTOFF_STEP_DAYS * i)
                  for i in range(TRAINING_CUTOFFS)]
    if first_order_on is None:
        raise InsufficientDataError("the warehouse holds no placed orders")
    earliest = first_order_on + timedelta(days=MIN_HISTORY_DAYS)
    usable = sorted(c for c in candidates if c >= earliest)
    if not usable:
        raise InsufficientDataError(
            f"orders start on {first_order_on}: training for {ds} with a {horizon_days}-day "
            f"horizon needs them to start by {latest_train - timedelta(days=MIN_HISTORY_DAYS)}")
    return usable, validation


def sample_share(rows_available: int, max_rows: int) -> int | None:
    """Persons to keep per 10,000 so that about `max_rows` of `rows_available` remain
    (None: all fit). Sampling happens in SQL, before features are computed."""
    if rows_available <= max_rows:
        return None
    return max(1, int(10_000 * max_rows / rows_available))


def train(ds: date, settings: Settings) -> StepReport:
    """Train, validate and register the churn and VIP models and evaluate recommendations.

    Approval: a model is approved when it beats both baselines (recency-only and RFM score)
    on validation ROC AUC. Unapproved versions are stored but scoring keeps the previous
    approved one. With too little history nothing is registered and the report says why
    (status `skipped`); that is not an error.

    Args:
        ds: logical date; training uses data up to the end of `ds` only.
        settings: product settings (`warehouse_path`, `models_dir`, `churn_horizon_days`...).

    Returns:
        A StepReport with versions, metrics and approvals in `details`.
    """
    start = time.perf_counter()
    horizon = settings.churn_horizon_days
    report = StepReport(step="train", ds=ds.isoformat())
    con = connect_read_only(settings)
    try:
        first = con.execute("select min(ordered_at)::date from orders "
                            "where status = 'placed' and ordered_at < $end::timestamp",
                            {"end": ds + timedelta(days=1)}).fetchone()[0]
        try:
            cutoffs, validation = plan_cutoffs(ds, horizon, first)
            rows_available = count_training_rows(con, [*cutoffs, validation])
            sample = sample_share(rows_available, settings.training_max_rows)
            frame = build_training_frame(con, [*cutoffs, validation], horizon, sample)
        except InsufficientDataError as e:
            return _skipped(report, str(e), start)
        features_seconds = round(time.perf_counter() - start, 2)
        report.rows_in = int(len(frame))
        content_hash = data_hash(frame)
        version = registry.make_version(ds, content_hash)
        details: dict = {"version": version, "training_cutoffs": [c.isoformat() for c in cutoffs],
                         "rows_available": rows_available, "rows_used": int(len(frame)),
                         "validation_cutoff": validation.isoformat(),
                         "features_seconds": features_seconds, "models": {}}

        nbp_start = time.perf_counter()
        nbp = evaluate_recommendations(con, ds, settings.next_best_products_count,
                                       sample=sample)
        nbp["sample_per_10000"] = sample
        details["recommendations_seconds"] = round(time.perf_counter() - nbp_start, 2)
        nbp_meta = {"model": RECOMMENDER, "version": version, "trained_ds": ds.isoformat(),
                    "has_model": False, "approved": True, "data_hash": content_hash,
                    "method": "item-to-item co-occurrence (orders + product views, cosine), "
                              "favourite-category then overall best sellers as fallback",
                    "parameters": {"recent_items": RECENT_ITEMS, "neighbours": NEIGHBOURS,
                                   "lookback_days": LOOKBACK_DAYS,
                                   "popularity_days": POPULARITY_DAYS,
                                   "fallback_depth": FALLBACK_DEPTH},
                    "evaluation": nbp}
        registry.save_version(settings.models_dir, RECOMMENDER, version, nbp_meta,
                              recommender_card(nbp_meta))
        details["next_best_product"] = nbp

        skipped = []
        fits = _fit_side_by_side(frame, validation, settings.confidence_threshold)
        for name in LABELS:
            try:
                trained, fit_seconds = fits[name].result()
            except InsufficientDataError as e:
                skipped.append(f"{name}: {e}")
                log_event(logger, "model_skipped", level=logging.WARNING, model=name,
                          ds=ds.isoformat(), reason=str(e))
                continue
            meta = {
                "model": name, "version": version, "trained_ds": ds.isoformat(),
                "definition": DEFINITIONS[name].format(h=horizon), "label": LABELS[name],
                "horizon_days": horizon, "threshold": settings.confidence_threshold,
                "training_cutoffs": [c.isoformat() for c in cutoffs],
                "validation_cutoff": validation.isoformat(),
                "training_window": {"from": first.isoformat(), "to": ds.isoformat()},
                "features": FEATURES, "hyperparameters": HYPERPARAMETERS,
                "estimator": "CalibratedModel(Pipeline(OrdinalEncoder(device), "
                             "HistGradientBoostingClassifier) on the training cut-offs, "
                             "isotonic on its out-of-fold scores, folds grouped by unified_id)",
                "data_hash": content_hash, "rows": trained.rows,
                "rows_available_before_sampling": rows_available,
                "metrics": trained.metrics, "baselines": trained.baselines,
                "cross_validation": trained.cross_validation,
                "calibration": trained.calibration,
                "approved": trained.approved, "approval_reason": trained.approval_reason,
                "has_model": True, "next_best_product": nbp,
                "fit_seconds": fit_seconds,
            }
            registry.save_version(settings.models_dir, name, version, meta,
                                  classifier_card(meta), trained.estimator)
            report.rows_out += 1
            details["models"][name] = {
                "approved": trained.approved, "reason": trained.approval_reason,
                "roc_auc": trained.metrics["roc_auc"],
                "baseline_roc_auc": {b: m["roc_auc"] for b, m in trained.baselines.items()},
                "brier": trained.metrics["brier"], "pr_auc": trained.metrics["pr_auc"],
                "top_decile_lift": trained.metrics["top_decile_lift"],
                "fit_seconds": meta["fit_seconds"]}
            log_event(logger, "model_trained", model=name, version=version,
                      approved=trained.approved, roc_auc=trained.metrics["roc_auc"],
                      baselines=details["models"][name]["baseline_roc_auc"],
                      rows=trained.rows["final_fit"])
        if skipped:
            details["skipped"] = skipped
        if report.rows_out == 0:
            return _skipped(report, "; ".join(skipped), start, details)
        if not all(m["approved"] for m in details["models"].values()) or skipped:
            report.status = "warning"
        details["peak_rss_mb"] = round(tree_rss_bytes() / 2**20)
        report.details = details
    finally:
        con.close()
    report.seconds = round(time.perf_counter() - start, 2)
    return report


def _fit_side_by_side(frame, validation: date, threshold: float) -> dict[str, Future]:
    """Each model's (TrainedModel, fit seconds), fitted in its own thread: a fit is one
    thread by design (models.MODEL_THREADS) and its boosting loops release the GIL, so the
    two models take the time of one on two cores (1M: 11.7 + 11.0 s one after the other)."""
    def fit(name: str):
        start = time.perf_counter()
        trained = train_and_validate(name, frame, validation, threshold)
        return trained, round(time.perf_counter() - start, 2)

    with ThreadPoolExecutor(max_workers=len(LABELS), thread_name_prefix="fit") as pool:
        return {name: pool.submit(fit, name) for name in LABELS}


def _skipped(report: StepReport, reason: str, start: float, details: dict | None = None) -> StepReport:
    report.status = "skipped"
    report.details = {**(details or {}), "reason": f"too little history to train: {reason}"}
    report.seconds = round(time.perf_counter() - start, 2)
    log_event(logger, "training_skipped", level=logging.WARNING, ds=report.ds, reason=reason)
    return report

"""The VIP and churn classifiers, their baselines, and time-based validation."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
from threadpoolctl import threadpool_limits

from personalization.scoring.features import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES
from personalization.scoring.metrics import classification_metrics, reliability

logger = logging.getLogger(__name__)

LABELS = {"churn": "is_churned", "vip": "is_vip"}
# Twice the usual rate at half the trees: the same validation AUC at 1M (churn 0.8942 vs
# 0.8944, VIP 0.9033 vs 0.9035), and every night's predictions walk half the trees
# (docs/models.md).
HYPERPARAMETERS = {"learning_rate": 0.1, "max_iter": 150, "max_leaf_nodes": 15,
                   "min_samples_leaf": 40, "l2_regularization": 1.0, "early_stopping": True,
                   "validation_fraction": 0.15, "n_iter_no_change": 20}
# Two grouped folds: their out-of-fold predictions give both the cross-validated AUC and the
# calibration data, so a model costs three boosting fits (two half-size, one full) instead of
# the nine of cross_val_predict + CalibratedClassifierCV(3 folds) + a calibrated refit.
CV_FOLDS = 2
# Gradient boosting's OpenMP threads busy-wait; on a shared 2-core box next to DuckDB and
# dbt that made training 10x slower than one thread. Many small fits: one thread each.
MODEL_THREADS = 1
# Below these counts a model (or its validation) would be noise: skip and say so.
MIN_TRAIN_ROWS = 300
MIN_CLASS_ROWS = 20


class InsufficientDataError(ValueError):
    """Too little history to train or validate a model honestly."""


def make_pipeline(seed: int = 0) -> Pipeline:
    """Device to ordinal codes, then gradient boosting (NaN-aware, so no imputation)."""
    prepare = ColumnTransformer(
        [("device", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                   encoded_missing_value=np.nan), CATEGORICAL_FEATURES)],
        remainder="passthrough", verbose_feature_names_out=False)
    model = HistGradientBoostingClassifier(random_state=seed, categorical_features=[0],
                                           **HYPERPARAMETERS)
    return Pipeline([("prepare", prepare), ("model", model)])


class CalibratedModel:
    """Boosting fitted on all training rows, its scores mapped to probabilities by a
    calibrator fitted on out-of-fold scores (what `CalibratedClassifierCV(ensemble=False)`
    does, without fitting the folds twice). Isotonic needs a few thousand rows to not
    overfit; below that, Platt scaling (a logistic regression on the score's logit)."""

    def __init__(self, model: Pipeline, oof: np.ndarray, y: np.ndarray):
        self.model = model
        self.method = "isotonic" if len(y) >= 6000 else "sigmoid"
        if self.method == "isotonic":
            self.calibrator = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            self.calibrator.fit(oof, y)
        else:
            self.calibrator = LogisticRegression().fit(_logit(oof), y)
        self.classes_ = np.array([0, 1])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        raw = boosting_probability(self.model, X)
        if self.method == "isotonic":
            p = self.calibrator.predict(raw)
        else:
            p = self.calibrator.predict_proba(_logit(raw))[:, 1]
        return np.column_stack([1.0 - p, p])


def boosting_probability(pipeline: Pipeline, X: pd.DataFrame) -> np.ndarray:
    """`pipeline.predict_proba(X)[:, 1]`, walking the trees on the binned features (one byte
    per value) instead of the raw ones (eight): the same splits (a value is in bin b exactly
    when it is <= the threshold of bin b; a split at bin b is the raw split at that threshold),
    the leaves added in the same order, so the same bits; 40% less CPU at 450k rows (the raw
    matrix does not fit in the cache). Falls back to sklearn's own path if its private parts
    (pinned in constraints.txt) change."""
    prepare, model = pipeline.named_steps["prepare"], pipeline.named_steps["model"]
    try:
        binned = model._bin_mapper.transform(
            np.ascontiguousarray(prepare.transform(X), dtype=np.float64))
        raw = np.zeros((len(binned), model.n_trees_per_iteration_),
                       dtype=model._baseline_prediction.dtype, order="F")
        raw += model._baseline_prediction
        model._predict_iterations(binned, model._predictors, raw, True,
                                  _openmp_effective_n_threads())
        return model._loss.predict_proba(raw)[:, 1]
    except (AttributeError, TypeError):
        return pipeline.predict_proba(X)[:, 1]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p)).reshape(-1, 1)


def fit_calibrated(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray,
                   seed: int = 0) -> tuple[CalibratedModel, np.ndarray]:
    """The calibrated model and its out-of-fold scores (folds grouped by person)."""
    oof = cross_val_predict(make_pipeline(seed), X, y, groups=groups,
                            cv=GroupKFold(n_splits=CV_FOLDS), method="predict_proba")[:, 1]
    return CalibratedModel(make_pipeline(seed).fit(X, y), oof, y), oof


def rfm_score(frame: pd.DataFrame) -> pd.Series:
    """Classic RFM score (3-15): quintiles of recency, frequency, monetary within each cut-off."""
    by_cutoff = frame.groupby("cutoff")
    r = 6 - np.ceil(by_cutoff["recency_days"].rank(pct=True, method="average") * 5)
    f = np.ceil(by_cutoff["frequency"].rank(pct=True, method="average") * 5)
    m = np.ceil(by_cutoff["monetary"].rank(pct=True, method="average") * 5)
    return (r + f + m).astype(float)


def _baseline_inputs(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {
        "recency_only": pd.DataFrame({"recency": frame["recency_days"].to_numpy()}),
        "rfm_score": pd.DataFrame({"rfm_score": rfm_score(frame).to_numpy()}),
    }


def _baseline_model() -> Pipeline:
    # A one-feature logistic regression: picks the direction on the training cut-offs and
    # maps the score to a probability, so Brier compares like with like.
    return Pipeline([("log", FunctionTransformer(np.log1p)),
                     ("lr", LogisticRegression())])


@dataclass
class TrainedModel:
    """A fitted model with everything the registry records about it."""

    name: str
    estimator: CalibratedModel
    metrics: dict
    baselines: dict
    cross_validation: dict
    calibration: list[dict]
    approved: bool
    approval_reason: str
    rows: dict


def check_enough(frame: pd.DataFrame, label: str, where: str) -> None:
    """Raise InsufficientDataError when `frame` is too small or one-class for `label`."""
    positives = int(frame[label].sum())
    negatives = int(len(frame) - positives)
    minimum = MIN_TRAIN_ROWS if where == "training" else MIN_TRAIN_ROWS // 3
    if len(frame) < minimum or min(positives, negatives) < MIN_CLASS_ROWS:
        raise InsufficientDataError(
            f"{where} set for {label} has {len(frame)} rows ({positives} positive, "
            f"{negatives} negative); need >= {minimum} rows and >= {MIN_CLASS_ROWS} of each class")


def predict(estimator, features: pd.DataFrame) -> np.ndarray:
    """P(positive) for a batch of feature rows (one vectorised call)."""
    with threadpool_limits(MODEL_THREADS, user_api="openmp"):
        return estimator.predict_proba(features[FEATURES])[:, 1]


def train_and_validate(name: str, frame: pd.DataFrame, validation_cutoff: date,
                       threshold: float, seed: int = 0) -> TrainedModel:
    """Temporal validation: fit on the cut-offs before `validation_cutoff` (their label
    windows end on or before it; grouped k-fold on them gives the calibration data and the
    cross-validated AUC), validate on `validation_cutoff`, compare with the baselines on
    that same split. The validated model is the one deployed (no refit on the validation
    cut-off: its metrics describe exactly what scores tonight, at a third of the fits).

    Raises:
        InsufficientDataError: too few rows or positives to train or validate.
    """
    with threadpool_limits(MODEL_THREADS, user_api="openmp"):
        return _train_and_validate(name, frame, validation_cutoff, threshold, seed)


def _train_and_validate(name: str, frame: pd.DataFrame, validation_cutoff: date,
                        threshold: float, seed: int) -> TrainedModel:
    label = LABELS[name]
    is_valid = frame["cutoff"] == pd.Timestamp(validation_cutoff)
    train, valid = frame[~is_valid], frame[is_valid]
    check_enough(train, label, "training")
    check_enough(valid, label, "validation")
    X_train, y_train = train[FEATURES], train[label].to_numpy(dtype=int)
    X_valid, y_valid = valid[FEATURES], valid[label].to_numpy(dtype=int)
    groups = train["unified_id"].to_numpy()

    # k-fold is only sound grouped by person: the same person appears at several cut-offs.
    model, oof = fit_calibrated(X_train, y_train, groups, seed)
    cross_validation = {"folds": CV_FOLDS, "grouped_by": "unified_id",
                        "roc_auc": round(float(roc_auc_score(y_train, oof)), 4)}
    p_valid = model.predict_proba(X_valid)[:, 1]
    metrics = classification_metrics(y_valid, p_valid, threshold)

    baselines = {}
    train_inputs, valid_inputs = _baseline_inputs(train), _baseline_inputs(valid)
    for base_name, base_train in train_inputs.items():
        fitted = _baseline_model().fit(base_train, y_train)
        p_base = fitted.predict_proba(valid_inputs[base_name])[:, 1]
        baselines[base_name] = classification_metrics(y_valid, p_base, threshold)

    beaten = {b: metrics["roc_auc"] > m["roc_auc"] for b, m in baselines.items()}
    approved = all(beaten.values())
    reason = ("beats " + " and ".join(beaten) + " on ROC AUC" if approved else
              "does not beat " + ", ".join(b for b, ok in beaten.items() if not ok)
              + " on ROC AUC")
    return TrainedModel(
        name=name, estimator=model, metrics=metrics, baselines=baselines,
        cross_validation=cross_validation, calibration=reliability(y_valid, p_valid),
        approved=approved, approval_reason=reason,
        rows={"training": int(len(train)), "validation": int(len(valid)),
              "final_fit": int(len(train)),
              "training_positive_rate": round(float(y_train.mean()), 4)},
    )


def data_hash(frame: pd.DataFrame) -> str:
    """Content hash of the training frame plus the feature list and hyperparameters."""
    cols = ["unified_id", "cutoff", *FEATURES, *LABELS.values()]
    row_hashes = pd.util.hash_pandas_object(frame[cols], index=False).to_numpy()
    digest = hashlib.sha256(row_hashes.tobytes())
    digest.update(json.dumps({"features": FEATURES, "numeric": NUMERIC_FEATURES,
                              "hyperparameters": HYPERPARAMETERS}, sort_keys=True).encode())
    return digest.hexdigest()

"""Classification metrics reported for every model and baseline on the same split."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def top_decile_lift(y_true: np.ndarray, score: np.ndarray) -> float:
    """Positive rate in the top 10% by score divided by the overall positive rate.

    Ties are broken by input order (stable sort), so the value is deterministic.
    """
    y = np.asarray(y_true, dtype=float)
    if y.size == 0 or y.mean() == 0:
        return float("nan")
    k = max(1, math.ceil(0.1 * y.size))
    top = np.argsort(-np.asarray(score, dtype=float), kind="stable")[:k]
    return float(y[top].mean() / y.mean())


def reliability(y_true: np.ndarray, prob: np.ndarray, bins: int = 10) -> list[dict]:
    """Mean predicted vs observed rate per equal-width probability bin (non-empty bins only)."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(prob, dtype=float)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    out = []
    for b in np.unique(idx):
        mask = idx == b
        out.append({"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "n": int(mask.sum()),
                    "mean_predicted": round(float(p[mask].mean()), 4),
                    "observed_rate": round(float(y[mask].mean()), 4)})
    return out


def classification_metrics(y_true: np.ndarray, prob: np.ndarray, threshold: float) -> dict:
    """ROC AUC, PR AUC, Brier, top-decile lift, and how the `threshold` behaves.

    Args:
        y_true: 0/1 labels.
        prob: predicted probabilities.
        threshold: the decision threshold segments use (e.g. 0.8).
    """
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(prob, dtype=float)
    above = p >= threshold
    return {
        "n": int(y.size),
        "positive_rate": round(float(y.mean()), 4),
        "roc_auc": round(float(roc_auc_score(y, p)), 4),
        "pr_auc": round(float(average_precision_score(y, p)), 4),
        "brier": round(float(brier_score_loss(y, p)), 4),
        "top_decile_lift": round(top_decile_lift(y, p), 4),
        "share_above_threshold": round(float(above.mean()), 4),
        # Calibration check for the segment threshold: of those at >= threshold, how many
        # actually were positive.
        "precision_above_threshold": (round(float(y[above].mean()), 4) if above.any() else None),
    }

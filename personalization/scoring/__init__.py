"""Scoring: VIP and churn models, next best products, best send hour.

Public surface: `train(ds, settings)` (weekly retraining) and `score(ds, settings)`
(nightly; trains first when needed). See docs/models.md.
"""

from personalization.scoring.score import score, scores_path
from personalization.scoring.train import train

__all__ = ["score", "scores_path", "train"]

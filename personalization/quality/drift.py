"""Population stability index against the previous run's stored distribution."""

from __future__ import annotations

import numpy as np
import pandas as pd

BINS = 10
_EPS = 1e-4


def histogram(values: pd.Series) -> dict:
    """Decile edges and counts of a numeric column (what the next run compares against)."""
    v = values.dropna().to_numpy(dtype=float)
    if v.size == 0:
        return {"edges": [], "counts": []}
    edges = np.unique(np.quantile(v, np.linspace(0, 1, BINS + 1)))
    counts = _counts(v, edges)
    return {"edges": edges.tolist(), "counts": counts.tolist()}


def _counts(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    # Open-ended outer bins so values beyond the previous range still count.
    inner = edges[1:-1]
    idx = np.searchsorted(inner, v, side="right")
    return np.bincount(idx, minlength=len(edges) - 1 if len(edges) > 1 else 1)


def psi(previous: dict, values: pd.Series) -> float | None:
    """PSI of `values` against a stored `histogram`; None when there is nothing to compare."""
    edges = np.asarray(previous.get("edges", []), dtype=float)
    v = values.dropna().to_numpy(dtype=float)
    if len(edges) < 2 or v.size == 0:
        return None
    expected = np.asarray(previous["counts"], dtype=float)
    actual = _counts(v, edges).astype(float)
    e = np.clip(expected / expected.sum(), _EPS, None)
    a = np.clip(actual / actual.sum(), _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))

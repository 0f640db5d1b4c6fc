"""Deterministic A/B variants and the global holdout, by hashing.

Both are pure functions of ids, so a person gets the same variant and holdout flag in
every run and on every machine; the Python versions document the rule and let analysts
recompute it. Bucket = first 8 hex digits of sha256(text) as an integer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from personalization.sql import literal

# Fixed salt: changing it reshuffles the holdout, which breaks every running comparison.
HOLDOUT_SALT = "personalization-holdout-v1"
BUCKETS = 10_000
DEFAULT_VARIANTS = ("A", "B")


def _bucket(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16)


def is_holdout(unified_id: str, holdout_pct: float) -> bool:
    """True when the person is in the global control group (same in every segment)."""
    return _bucket(f"{HOLDOUT_SALT}:{unified_id}") % BUCKETS < round(holdout_pct * BUCKETS / 100)


def variant(unified_id: str, campaign: str, variants: Sequence[str] = DEFAULT_VARIANTS) -> str:
    """The person's variant for a campaign."""
    return variants[_bucket(f"{campaign}:{unified_id}") % len(variants)]


def _bucket_sql(text_sql: str) -> str:
    return f"CAST(('0x' || substr(sha256({text_sql}), 1, 8)) AS UBIGINT)"


def holdout_sql(unified_id_sql: str, holdout_pct: float) -> str:
    """SQL twin of `is_holdout`."""
    threshold = round(holdout_pct * BUCKETS / 100)
    text = f"{literal(HOLDOUT_SALT + ':')} || {unified_id_sql}"
    return f"({_bucket_sql(text)} % {BUCKETS} < {threshold})"


def variant_sql(unified_id_sql: str, campaign: str, variants: Sequence[str]) -> str:
    """SQL twin of `variant`."""
    if not variants:
        raise ValueError("a campaign needs at least one variant")
    text = f"{literal(campaign + ':')} || {unified_id_sql}"
    choices = "[" + ", ".join(literal(v) for v in variants) + "]"
    return f"{choices}[1 + CAST({_bucket_sql(text)} % {len(variants)} AS INTEGER)]"

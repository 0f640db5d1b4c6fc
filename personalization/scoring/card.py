"""Model cards: a short Markdown page per registered version, rendered from its metadata."""

from __future__ import annotations

from typing import Any

_METRICS = ("roc_auc", "pr_auc", "brier", "top_decile_lift", "precision_above_threshold",
            "share_above_threshold")


def _metric_table(meta: dict[str, Any]) -> list[str]:
    rows = ["| | " + " | ".join(_METRICS) + " |", "|---" * (len(_METRICS) + 1) + "|"]
    named = {"model": meta["metrics"], **meta["baselines"]}
    for name, values in named.items():
        rows.append(f"| {name} | " + " | ".join(str(values.get(m)) for m in _METRICS) + " |")
    return rows


def classifier_card(meta: dict[str, Any]) -> str:
    """Markdown card for the churn or VIP model."""
    lines = [
        f"# {meta['model']} model {meta['version']}",
        "",
        f"- definition: {meta['definition']}",
        f"- trained for ds {meta['trained_ds']}; training cut-offs "
        f"{', '.join(meta['training_cutoffs'])}; validation cut-off {meta['validation_cutoff']}; "
        f"horizon {meta['horizon_days']} days",
        f"- estimator: {meta['estimator']}",
        f"- rows: {meta['rows']}",
        f"- data hash: `{meta['data_hash']}`",
        f"- approved: **{meta['approved']}** ({meta['approval_reason']})",
        "",
        f"## Validation (cut-off {meta['validation_cutoff']}, threshold {meta['threshold']})",
        "",
        *_metric_table(meta),
        "",
        f"Grouped {meta['cross_validation']['folds']}-fold ROC AUC on the training cut-offs: "
        f"{meta['cross_validation']['roc_auc']}.",
        "",
        "## Reliability (validation)",
        "",
        "| bin | n | mean predicted | observed |",
        "|---|---|---|---|",
        *[f"| {b['bin']} | {b['n']} | {b['mean_predicted']} | {b['observed_rate']} |"
          for b in meta["calibration"]],
        "",
        "## Features",
        "",
        ", ".join(f"`{f}`" for f in meta["features"]),
        "",
    ]
    if meta.get("next_best_product"):
        nbp = meta["next_best_product"]
        lines += ["## Next best product (trained with this version)", "",
                  f"hit rate@{nbp['k']} {nbp['hit_rate']} vs popularity "
                  f"{nbp['popularity_hit_rate']} on {nbp['evaluated_persons']} held-out "
                  "last purchases", ""]
    return "\n".join(lines)


def recommender_card(meta: dict[str, Any]) -> str:
    """Markdown card for the next-best-product recommender (no model file: SQL each night)."""
    ev = meta["evaluation"]
    return "\n".join([
        f"# next_best_product {meta['version']}",
        "",
        f"- method: {meta['method']}",
        f"- parameters: {meta['parameters']}",
        f"- evaluated for ds {meta['trained_ds']}: recommendations as of {ev['cutoff']}, "
        f"held-out last purchase in the following {ev['holdout_days']} days "
        f"({ev['evaluated_persons']} persons, new products only)",
        "",
        f"| | hit rate@{ev['k']} |",
        "|---|---|",
        f"| co-occurrence + fallbacks | {ev['hit_rate']} |",
        f"| popularity baseline | {ev['popularity_hit_rate']} |",
        "",
        f"Share of evaluated persons with at least one co-occurrence candidate: "
        f"{ev['share_with_cooccurrence']}.",
        "",
    ])

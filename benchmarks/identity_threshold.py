"""What other match thresholds would do: a built home's pairs re-decided and re-clustered at
each threshold, and identity_map scored against the ground truth.

    python benchmarks/identity_threshold.py --home H --truth T --ds D --thresholds 0.99,0.95,0.9,0.8 --label L
    python benchmarks/identity_threshold.py ... --thresholds 0.9 --reestimate --label L   # this code's model

The home's warehouse is copied aside first (`<home>/warehouse.threshold-saved.duckdb`, kept for
reruns) and put back before each threshold, so every threshold starts from the same state. Each
run rebuilds `int_identity__scored_pairs` and what lies between it and `identity_map` (the
candidate pairs' comparisons and the model stay as the night left them; the clusters follow the
new decisions: the same clusters as a full rebuild at that threshold, checked at 100k). With
--reestimate the model (u, m, prior, term frequencies) is estimated afresh from the home's pairs
by the checked-out code first, so two commits' models can be compared on one home; the learned
m and u are written beside the figures. Writes benchmarks/results/identity-threshold-<label>-<date>.json.
One run at a time: it uses both cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import date
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.identity import learned_model  # noqa: E402
from benchmarks.identity_nights import _restore  # noqa: E402
from personalization.config import load_settings  # noqa: E402
from personalization.warehouse.dbt import invoke  # noqa: E402
from personalization.warehouse.evaluate import evaluate  # noqa: E402

SCOPES = ("linkable", "profiles")
FIGURES = ("precision", "recall", "f1", "predicted_pairs", "true_positive_pairs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True, help="a home whose night has run")
    ap.add_argument("--truth", type=Path, required=True, help="the generator's ground truth")
    ap.add_argument("--ds", type=date.fromisoformat, required=True, help="the night the home last ran")
    ap.add_argument("--thresholds", required=True, help="comma-separated match probabilities")
    ap.add_argument("--label", required=True)
    ap.add_argument("--reestimate", action="store_true", help="estimate the model afresh first")
    args = ap.parse_args()
    os.environ["PERSONALIZATION_HOME"] = str(args.home)
    settings = load_settings(home=args.home)
    saved = settings.warehouse_path.with_name("warehouse.threshold-saved.duckdb")
    if not saved.exists():
        shutil.copy(settings.warehouse_path, saved)
    first = "int_identity__model_schedule" if args.reestimate else "int_identity__scored_pairs"
    reestimate = {"identity_reestimate": True} if args.reestimate else {}
    runs = []
    for threshold in (float(t) for t in args.thresholds.split(",")):
        _restore(saved, settings)
        started = time.perf_counter()
        invoke(["run", "--select", f"{first}+,+identity_map"], settings, ds=args.ds,
               extra_vars={"identity_match_threshold": threshold, **reestimate})
        seconds = round(time.perf_counter() - started, 1)
        evaluation = evaluate(args.truth, settings, misses=True)
        run = {"threshold": threshold, "rebuild_seconds": seconds,
               **{scope: {k: evaluation["scopes"][scope][k] for k in FIGURES} for scope in SCOPES},
               "calibration": evaluation["misses"]["calibration"], "model": _model(settings)}
        print(json.dumps({k: v for k, v in run.items() if k not in ("calibration", "model")}), flush=True)
        runs.append(run)
    _restore(saved, settings)  # the home as its night left it
    out = REPO / "benchmarks" / "results" / f"identity-threshold-{args.label}-{date.today()}.json"
    out.write_text(json.dumps({"label": args.label, "home": str(args.home), "ds": args.ds.isoformat(),
                               "runs": runs}, indent=2) + "\n")
    print(f"written to {out}")


def _model(settings) -> dict:
    """The identity model the run scored with: m, u and weight per level, prior, convergence."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        prior_weight, m_change, estimated_on = con.execute(
            "select max(prior_weight), max(m_change), max(estimated_on) "
            "from int_identity__m_probabilities").fetchone()
        return {"levels": learned_model(con), "prior_weight": prior_weight, "m_change": m_change,
                "estimated_on": estimated_on.isoformat()}


if __name__ == "__main__":
    main()

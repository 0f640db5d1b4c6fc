"""Learning curve for the churn and VIP models: how many training rows are worth fitting.

Builds the training frame once (the same persons and cut-offs `train` uses for `--ds`, with
the old 400k-row sample), keeps its validation cut-off as one fixed holdout, and fits the
models on nested samples of the training persons (a hash of `unified_id`). Every size is
scored on the same holdout, so AUC lost to a smaller sample is visible; CPU seconds per fit.

    python benchmarks/scoring_learning_curve.py --home benchmarks/work/scoring --ds 2026-09-30
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402

from personalization.config import load_settings  # noqa: E402
from personalization.scoring.db import connect_read_only  # noqa: E402
from personalization.scoring.features import build_training_frame, count_training_rows  # noqa: E402
from personalization.scoring.models import LABELS, train_and_validate  # noqa: E402
from personalization.scoring.train import plan_cutoffs, sample_share  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--ds", type=date.fromisoformat, required=True)
    ap.add_argument("--frame-rows", type=int, default=400_000,
                    help="sample of the frame (the holdout is its validation cut-off)")
    ap.add_argument("--sizes", default="25000,50000,100000,200000,all")
    args = ap.parse_args()
    settings = load_settings(home=args.home)
    con = connect_read_only(settings)
    first = con.execute("select min(ordered_at)::date from orders where status = 'placed'").fetchone()[0]
    cutoffs, validation = plan_cutoffs(args.ds, settings.churn_horizon_days, first)
    available = count_training_rows(con, [*cutoffs, validation])
    start, cpu = time.perf_counter(), time.process_time()
    frame = build_training_frame(con, [*cutoffs, validation], settings.churn_horizon_days,
                                 sample_share(available, args.frame_rows))
    con.close()
    result = {"ds": args.ds.isoformat(), "rows_available": available, "frame_rows": len(frame),
              "frame_seconds": round(time.perf_counter() - start, 1),
              "frame_cpu_seconds": round(time.process_time() - cpu, 1),
              "load_avg_at_start": [round(x, 2) for x in os.getloadavg()], "curve": []}
    is_valid = frame["cutoff"] == pd.Timestamp(validation)
    train_rows = int((~is_valid).sum())
    person_hash = pd.util.hash_pandas_object(frame["unified_id"], index=False) % 10_000
    for size in args.sizes.split(","):
        keep = 10_000 if size == "all" else min(10_000, int(10_000 * int(size) / train_rows) + 1)
        subset = frame[is_valid | (person_hash < keep).to_numpy()]
        for name in LABELS:
            start, cpu = time.perf_counter(), time.process_time()
            trained = train_and_validate(name, subset, validation, settings.confidence_threshold)
            result["curve"].append({
                "model": name, "training_rows": trained.rows["training"],
                "holdout_rows": trained.rows["validation"],
                "roc_auc": trained.metrics["roc_auc"], "pr_auc": trained.metrics["pr_auc"],
                "brier": trained.metrics["brier"],
                "baseline_roc_auc": {b: m["roc_auc"] for b, m in trained.baselines.items()},
                "fit_seconds": round(time.perf_counter() - start, 1),
                "fit_cpu_seconds": round(time.process_time() - cpu, 1),
                "load_avg": round(os.getloadavg()[0], 2)})
            print(json.dumps(result["curve"][-1]), flush=True)
    out = REPO / "benchmarks" / "results" / "scoring" / f"{date.today().isoformat()}-learning-curve.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {out}")


if __name__ == "__main__":
    main()

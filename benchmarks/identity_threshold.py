"""What other match thresholds would do: a built home's pairs re-decided and re-clustered at
each threshold, and identity_map scored against the ground truth.

    python benchmarks/identity_threshold.py --home H --truth T --ds D --thresholds 0.99,0.95,0.9,0.8 --label L

The home's warehouse is copied aside first (`<home>/warehouse.threshold-saved.duckdb`, kept for
reruns) and put back before each threshold, so every threshold starts from the same state. Each
run rebuilds `int_identity__scored_pairs` and what lies between it and `identity_map` (the
candidate pairs' comparisons and the model stay as the night left them; the clusters follow the
new decisions: the same clusters as a full rebuild at that threshold, checked at 100k). Writes
benchmarks/results/identity-threshold-<label>-<date>.json. One run at a time: it uses both cores.
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

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
    args = ap.parse_args()
    os.environ["PERSONALIZATION_HOME"] = str(args.home)
    settings = load_settings(home=args.home)
    saved = settings.warehouse_path.with_name("warehouse.threshold-saved.duckdb")
    if not saved.exists():
        shutil.copy(settings.warehouse_path, saved)
    runs = []
    for threshold in (float(t) for t in args.thresholds.split(",")):
        _restore(saved, settings)
        started = time.perf_counter()
        invoke(["run", "--select", "int_identity__scored_pairs+,+identity_map"], settings, ds=args.ds,
               extra_vars={"identity_match_threshold": threshold})
        seconds = round(time.perf_counter() - started, 1)
        evaluation = evaluate(args.truth, settings, misses=True)
        run = {"threshold": threshold, "rebuild_seconds": seconds,
               **{scope: {k: evaluation["scopes"][scope][k] for k in FIGURES} for scope in SCOPES},
               "calibration": evaluation["misses"]["calibration"]}
        print(json.dumps({k: v for k, v in run.items() if k != "calibration"}), flush=True)
        runs.append(run)
    _restore(saved, settings)  # the home as its night left it
    out = REPO / "benchmarks" / "results" / f"identity-threshold-{args.label}-{date.today()}.json"
    out.write_text(json.dumps({"label": args.label, "home": str(args.home), "ds": args.ds.isoformat(),
                               "runs": runs}, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()

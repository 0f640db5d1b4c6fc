"""A full identity rebuild (`--full-refresh` of the identity chain, with its staging) on a
copy of a built home's warehouse: the identity models' CPU seconds, model by model, and
their seconds as dbt reports them.

    python benchmarks/identity_full_rebuild.py --home H --saved W --ds D --label L [--lake K]

`--saved` is a copy of a built warehouse; it is copied over `<home>/warehouse.duckdb` first,
so runs of different code start from the same state. Writes
benchmarks/results/identity-full-rebuild-<label>-<date>.json. One run at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.home_nights import _commit  # noqa: E402
from benchmarks.identity_nights import _build, _identity_seconds, _restore  # noqa: E402
from personalization.config import load_settings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True, help="the home to rebuild in")
    ap.add_argument("--saved", type=Path, required=True, help="a built warehouse to start from")
    ap.add_argument("--lake", type=Path, default=None, help="default: <home>/lake")
    ap.add_argument("--ds", type=date.fromisoformat, required=True)
    ap.add_argument("--label", required=True)
    args = ap.parse_args()
    os.environ["PERSONALIZATION_HOME"] = str(args.home)
    settings = load_settings(home=args.home, lake_dir=args.lake or args.home / "lake")
    _restore(args.saved, settings)
    result = {"label": args.label, "ds": args.ds.isoformat(), "commit": _commit(),
              **_build(settings, args.ds, full_refresh=True)}
    # The identity models' seconds as dbt reports them (summed over the models, as
    # identity_nights.py does), beside the process CPU seconds `_build` samples.
    result["identity_model_seconds"], result["identity_model_seconds_by_model"] = \
        _identity_seconds(settings)
    out = REPO / "benchmarks" / "results" / f"identity-full-rebuild-{args.label}-{date.today()}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "model_cpu_seconds"}, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()

"""Nights that stop part-way, one cut after another: does the next night repair them?

    python benchmarks/stopped_nights.py identity [--work DIR] [--reestimate] [MODEL ...]
    python benchmarks/stopped_nights.py marts [--work DIR] [MODEL ...]

A `dbt build` that fails at a model skips it and everything downstream; the next night
must still give the tables of a full rebuild. For every model (or the ones named), a night
is built without `MODEL+` (the model failed), and once more with the model built but its
children skipped (its data tests failed: `MODEL:tests`); the night after is built
incrementally beside a `--full-refresh` from the same state and the two compared.

- `identity`: the identity project of tests/test_identity_incremental.py (80 seeded
  persons: new, changed, deleted, merged and split records, a phone that turns junk, a
  cookie's login), every model under models/intermediate/{identity,persons,orders}; ids,
  blocking keys and the tables written as their changes are compared (≈ 20 s a cut). With
  `--reestimate` the stopped night re-estimates the stored identity model (the night after
  keeps it): a table that stopped before it must not keep rows of the older model.
- `marts`: the generated 3-night pipeline of tests/test_incremental_marts.py (its plants:
  a login, a recategorised product, a late shop account, a bridge, an erasure request), the
  incremental models given on the command line or every one the test compares; its tables
  are compared (≈ 30 s a cut).

A correctness sweep too slow for the test suite (≈ 20 / 30 min); each fault it found
became a test. Prints one JSON line per cut; a whole sweep (no MODEL given) also writes them
to benchmarks/results/stopped-nights-<mode>-<date>.json. Exits 1 if any cut differs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import date, datetime
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

MODELS = REPO / "dbt_project" / "models"
COOKIE = ("cookie-login", None, None, None, datetime(2026, 1, 1, 9))


def _population():
    """The seeded persons of night 1, and the shop account a bridge moved (split on night 2)."""
    import test_identity_incremental as T

    people = T.Population(seed=5, persons=80)
    bridged = T._bridge(people, 5, 40)
    T._share_phone(people, 3)
    return people, bridged


def _identity_prepare(work: Path) -> Path:
    """Night 1 built, once: every cut starts from a copy of its warehouse."""
    import test_identity_incremental as T
    from test_identity import IdentityProject

    base = work / "base"
    if not (base / "warehouse.duckdb").exists():
        shutil.rmtree(base, ignore_errors=True)
        people, _ = _population()
        first = IdentityProject(base)
        first.load(*people.tables(), [], [COOKIE])
        first.build(T.NIGHTS[0])
    return base


def _identity_cut(work: Path, base: Path, cut: str, reestimate: bool = False) -> dict:
    import test_identity_incremental as T
    from test_identity import IdentityProject

    nights = T.NIGHTS
    root = work / cut.replace(":", "_")
    shutil.rmtree(root, ignore_errors=True)
    project = IdentityProject(root / "incremental")
    shutil.copy(base / "warehouse.duckdb", project.root / "warehouse.duckdb")
    people, bridged = _population()
    account = people.shop[sorted(people.shop)[0]]["id"]
    T._share_phone(people, 1)  # the shared phone turns junk
    for _ in range(8):
        people.add_person()
    people.change(10)
    people.shop[bridged[0]] = bridged[1]  # a split
    T._bridge(people, 3, 30)  # a merge
    for pid in sorted(people.shop)[20:22]:
        del people.shop[pid]
    events = (COOKIE, ("cookie-login", account, None, None, datetime(2026, 1, 2, 9)))
    project.deliveries[COOKIE] = date.fromisoformat(nights[0])
    project.load(*people.tables(), [], list(events), delivered_on=nights[1])
    model = cut.split(":")[0]
    project.build(nights[1], run_only=True, exclude=f"{model}+", identity_reestimate=reestimate)
    if cut.endswith(":tests"):  # built, its tests failed: only its children were skipped
        project.build(nights[1], run_only=True, select=model, identity_reestimate=reestimate)
    for _ in range(4):
        people.add_person()
    people.change(3)
    rebuild = T._start_rebuild(project, root / "rebuilt", people, nights[2], events, identity_reestimate=False)
    night = T._night(project, rebuild, people, nights[2], events, identity_reestimate=False)
    differences = {}
    if night["ids"] != night["rebuilt_ids"]:
        ids, rebuilt = night["ids"], night["rebuilt_ids"]
        differences["identity_map"] = sum(ids.get(k) != rebuilt.get(k) for k in set(ids) | set(rebuilt))
    if night["blocking_keys"] != night["rebuilt_blocking_keys"]:
        differences["int_identity__blocking_keys"] = len(
            set(night["blocking_keys"]) ^ set(night["rebuilt_blocking_keys"]))
    for table, rows in night["tables"].items():
        if rows != night["rebuilt_tables"][table]:
            differences[table] = len(set(rows) ^ set(night["rebuilt_tables"][table]))
    return differences


def _marts_prepare(work: Path) -> Path:
    """Night 1 built and night 2 extracted, once: every cut starts from a copy."""
    import test_incremental_marts as M

    from personalization.config import load_settings
    from personalization.generate import generate
    from personalization.warehouse import invoke

    base = work / "base"
    if (base / "ready").exists():
        return base
    shutil.rmtree(work, ignore_errors=True)
    landing = work / "landing"
    settings = load_settings(home=base, landing_dir=landing)
    generate(out=landing, customers=150, days=3, seed=5, start=M.NIGHT1, truth_path=work / "truth.parquet")
    _, account = M._plant_login(landing)
    M._recategorise_one_product(landing)
    M._plant_late_account(landing, account)
    invoke(["seed"], settings)
    M._extract_and_build(settings, M.NIGHT1)
    M._plant_purchase_after_click(settings, M.NIGHT3)
    M._plant_bridge_and_erasure(settings, M.NIGHT3)
    _extract(settings, M.NIGHT2)
    (base / "ready").write_text("")
    return base


def _extract(settings, ds: date) -> None:
    from personalization.config import SOURCES
    from personalization.pipeline import run_step

    for source in SOURCES:
        run_step(f"extract_{source}", ds, settings)


def _marts_cut(work: Path, base: Path, cut: str) -> dict:
    import pandas as pd
    import test_incremental_marts as M

    from personalization.config import load_settings
    from personalization.warehouse import invoke

    model = cut.split(":")[0]
    home, full_home = work / cut.replace(":", "_"), work / f"{cut.replace(':', '_')}_full"
    for folder in (home, full_home):
        shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(base, home)
    settings = load_settings(home=home, landing_dir=work / "landing")
    invoke(["run", *M.SELECT, "--exclude", f"{model}+"], settings, M.NIGHT2)
    if cut.endswith(":tests"):  # built, its tests failed: only its children were skipped
        invoke(["run", "--select", model], settings, M.NIGHT2)
    _extract(settings, M.NIGHT3)
    invoke(["run", *M.SELECT], settings, M.NIGHT3)
    shutil.copytree(home, full_home)
    full = load_settings(home=full_home, landing_dir=work / "landing")
    invoke(["run", *M.SELECT, "--full-refresh"], full, M.NIGHT3)
    incremental, rebuilt = M._tables(settings), M._tables(full)
    differences = {}
    for table in M.TABLES:
        try:  # as the test compares: floats within pandas' default tolerance (a re-estimated
            # model moves the match scores of kept rows in the ninth digit)
            pd.testing.assert_frame_equal(incremental[table], rebuilt[table])
        except AssertionError:
            a, b = (frame.round(6).astype(str) for frame in (incremental[table], rebuilt[table]))
            merged = a.merge(b, how="outer", on=list(a.columns), indicator=True)
            differences[table] = int((merged["_merge"] != "both").sum())
    return differences


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("identity", "marts"))
    ap.add_argument("models", nargs="*", help="cut at these models (default: every one, see above)")
    ap.add_argument("--work", type=Path, default=None, help="working folder (default benchmarks/work/stopped-<mode>)")
    ap.add_argument("--reestimate", action="store_true", help="identity: the stopped night re-estimates the model")
    args = ap.parse_intermixed_args()
    work = args.work or REPO / "benchmarks" / "work" / f"stopped-{args.mode}"
    work.mkdir(parents=True, exist_ok=True)
    if args.mode == "identity":
        folders = ("intermediate/identity", "intermediate/persons", "intermediate/orders")
        models = args.models or sorted(p.stem for f in folders for p in (MODELS / f).glob("*.sql"))
        cuts = args.models or [*models, *(f"{m}:tests" for m in models)]
        run = partial(_identity_cut, work, _identity_prepare(work), reestimate=args.reestimate)
    else:
        import test_incremental_marts as M
        cuts = args.models or [*M.TABLES, *(f"{m}:tests" for m in M.TABLES)]
        run = partial(_marts_cut, work, _marts_prepare(work))
    results = []
    for cut in cuts:
        started = time.perf_counter()
        try:
            differences = run(cut)
        except BaseException as e:  # pytest.fail (a failed dbt build) raises a BaseException
            if isinstance(e, KeyboardInterrupt):
                raise
            differences = {"error": (str(e) or repr(e))[-800:]}
        results.append({"cut": cut, "seconds": round(time.perf_counter() - started, 1),
                        "differences": differences})
        print(json.dumps(results[-1]), flush=True)
    differing = [r["cut"] for r in results if r["differences"]]
    print(f"{len(results)} cuts, {len(differing)} differ: {differing}")
    if not args.models:  # a whole sweep is a result; a few named cuts are a check
        mode = args.mode + ("-reestimate" if args.reestimate else "")
        out = REPO / "benchmarks" / "results" / f"stopped-nights-{mode}-{date.today().isoformat()}.json"
        out.write_text(json.dumps({"mode": mode, "cuts": results}, indent=1) + "\n")
        print(f"written to {out}")
    sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()

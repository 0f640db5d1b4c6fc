"""Summarise benchmarks/results/*.json into docs/performance.md (between the results markers)
and draw docs/performance_time.png and docs/performance_memory.png.

    python benchmarks/report.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
DOC = REPO / "docs" / "performance.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
SCALES = (10_000, 100_000, 1_000_000, 3_000_000, 5_000_000)  # as benchmarks/run.py
STEPS = ["extract_crm", "extract_shop", "extract_pixel", "gate_lake", "erase_arrivals", "build_marts",
         "gate_marts", "score", "build_segments", "gate_segments", "export", "erase", "sync"]


# <date>-<scale>.json, then the day's later runs -r2, -r3 (run.py); names with another tail
# (-first, -stopped, a session's name) were kept beside the day's run, which wins over them.
_RESULT_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})-\d+(?:-r(\d+))?(-.*)?\.json$")


def _run_order(path: Path) -> tuple[str, int]:
    match = _RESULT_NAME.match(path.name)
    if match is None:
        return (path.name, 0)
    day, number, other = match.groups()
    return (day, 0 if other else int(number or 1))


def latest_per_scale() -> dict[int, dict]:
    runs: dict[int, tuple[str, dict]] = {}
    for path in sorted(RESULTS.glob("2*.json"), key=_run_order):  # other harnesses differ
        data = json.loads(path.read_text())
        if "scale" not in data or "full_run" not in data:  # another harness's file
            continue
        runs[data["scale"]] = (path.name, data)  # oldest first: the newest wins
    return {scale: data | {"file": name} for scale, (name, data) in sorted(runs.items())}


def _fmt(v, unit=""):
    return "–" if v is None else f"{v:,.1f}{unit}" if isinstance(v, float) else f"{v:,}{unit}"


def tables(runs: dict[int, dict]) -> str:
    scales = list(runs)
    head = "| | " + " | ".join(f"{s:,} customers" for s in scales) + " |\n|---|" + "---|" * len(scales)
    rows = [head]

    def row(label, fn):
        rows.append(f"| {label} | " + " | ".join(_cell(fn, runs[s]) for s in scales) + " |")

    row("result file (complete run?)", lambda r: f"{r['file']} ({'yes' if r.get('complete', True) else 'partial'})")
    row("data", lambda r: r.get("generated", "–"))
    row("generation, s (CPU s, mean load, peak MiB)", lambda r: _fmt(r["generate"]["seconds"]) +
        f" ({_fmt(r['generate'].get('cpu_seconds'))}, {_fmt(r['generate'].get('load_avg'))}, "
        f"{_fmt(r['generate']['peak_rss_mib'])})")
    row("mean load average during the full / incremental run (2 cores)",
        lambda r: f"{_fmt(r['full_run'].get('load_avg'))} / {_fmt(r['incremental_run'].get('load_avg'))}")
    row("full run CPU s", lambda r: _fmt(r["full_run"].get("cpu_seconds")))
    row("incremental CPU s (share of full run's CPU)", lambda r: f"{r['incremental_run']['cpu_seconds']:,.1f} "
        f"({r['incremental_run']['cpu_share_of_full_run']:.0%})")
    row("**full run** (every day of landing files but the last), s", lambda r: _fmt(r["full_run"]["seconds"]))
    row("full run peak RSS, MiB", lambda r: _fmt(r["full_run"]["peak_rss_mib"]))
    row("**incremental day**, s (share of full)", lambda r: f"{r['incremental_run']['seconds']:,.1f} "
        f"({r['incremental_run']['share_of_full_run']:.0%})")
    row("rerun of the same day, s", lambda r: _fmt(r["rerun_same_day"]["seconds"]))
    row("gate share of the full run", lambda r: f"{_gate_share(r['full_run']):.0%}")
    row("gate share of the incremental run", lambda r: f"{_gate_share(r['incremental_run']):.0%}")
    missing = [f"{x:,}" for x in SCALES if x not in runs]
    out = "### Pipeline\n\n" + "\n".join(rows) + "\n\n"
    if missing:
        out += f"Not run yet: {', '.join(missing)} customers.\n\n"

    rows = ["| step | " + " | ".join(f"{s:,}: full / incr. s (peak MiB)" for s in scales) + " |",
            "|---|" + "---|" * len(scales)]
    for step in [*STEPS[:6], "identity", *STEPS[6:]]:
        cells = []
        for s in scales:
            f = runs[s]["full_run"]["steps"].get(step)
            i = runs[s].get("incremental_run", {}).get("steps", {}).get(step)
            if not f:
                cells.append("skipped" if step in runs[s].get("skipped_steps", ()) else "–")
                continue
            mem = f" ({f['peak_rss_mib']:,.0f})" if "peak_rss_mib" in f else " (in build_marts)"
            cells.append(f"{f['seconds']:,.1f} / {i['seconds'] if i else 0:,.1f}{mem}")
        rows.append(f"| {step} | " + " | ".join(cells) + " |")
    out += "### Per step\n\n" + "\n".join(rows) + "\n\n"

    rows = ["| | " + " | ".join(f"{s:,}" for s in scales) + " |", "|---|" + "---|" * len(scales)]

    def ref(kind, key, unit=""):
        def cell(r):
            x = r["references"].get(kind)
            if not x:
                return "not run"
            if x.get("status") != "ok":
                return x.get("status", "?")
            return _fmt(x.get(key), unit)
        return cell

    for label, fn in [
        ("bare DuckDB SQL, s", ref("duckdb", "seconds")),
        ("bare DuckDB SQL, peak MiB", ref("duckdb", "peak_rss_mib")),
        ("pandas (1 thread), s", ref("pandas", "seconds")),
        ("pandas, peak MiB", ref("pandas", "peak_rss_mib")),
        ("pandas and DuckDB agree (counts and sums)",
         lambda r: "yes" if r["references"].get("pandas_vs_duckdb_differences") == []
         else str(r["references"].get("pandas_vs_duckdb_differences", "–"))),
        ("our dbt marts build ÷ bare DuckDB", lambda r: _fmt(r["ratios"]["pipeline_build_marts_vs_bare_duckdb"], "×")),
        ("pandas ÷ bare DuckDB", lambda r: _fmt(r["ratios"]["pandas_vs_bare_duckdb"], "×")),
    ]:
        rows.append(f"| {label} | " + " | ".join(_cell(fn, runs[s]) for s in scales) + " |")
    out += "### Reference implementations (same lake, each in its own process)\n\n" + "\n".join(rows) + "\n"
    out += "\n" + outcomes(runs)
    out += "\nResult files: " + ", ".join(f"`benchmarks/results/{r['file']}`" for r in runs.values()) + "\n"
    return out


def _cell(fn, run: dict) -> str:
    """One table cell; a partial run (stopped before that phase) shows "–"."""
    try:
        return fn(run)
    except (KeyError, TypeError, ValueError):
        return "–"


def outcomes(runs: dict[int, dict]) -> str:
    """Identity quality and stability, model metrics and segment sizes of each run."""
    scales = [s for s in runs if runs[s].get("outcomes")]
    if not scales:
        return ""
    rows = ["| | " + " | ".join(f"{s:,}" for s in scales) + " |", "|---|" + "---|" * len(scales)]

    def row(label, fn):
        cells = []
        for s in scales:
            try:
                cells.append(fn(runs[s]["outcomes"]))
            except (KeyError, TypeError):
                cells.append("–")
        if set(cells) != {"–"}:  # a measure no run has yet
            rows.append(f"| {label} | " + " | ".join(cells) + " |")

    for scope in ("all", "linkable", "profiles"):
        row(f"identity precision / recall ({scope})", lambda o, sc=scope:
            f"{o['identity']['scopes'][sc]['precision']:.4f} / {o['identity']['scopes'][sc]['recall']:.4f}")
    row("persons keeping their id after one more day (all / known by CRM or shop)", lambda o:
        f"{o['identity_stability_after_one_day']['share_kept']:.2%} / "
        f"{o['identity_stability_after_one_day']['share_known_kept']:.2%}")
    row("real persons known by CRM or shop whose main id kept all its records (ground truth)",
        lambda o: f"{o['identity_stability_after_one_day']['share_real_main_id_kept']:.3%}")
    row("load-log rows that do not add up (rows_in ≠ loaded + quarantined) / rows",
        lambda o: f"{o['load_log']['rows_not_adding_up']} / {o['load_log']['load_log_rows']:,}")
    for model in ("churn", "vip"):
        row(f"{model} ROC AUC: model / recency-only / RFM (approved)", lambda o, m=model:
            f"{o['models'][m]['metrics']['roc_auc']:.3f} / "
            f"{o['models'][m]['baselines']['recency_only']['roc_auc']:.3f} / "
            f"{o['models'][m]['baselines']['rfm_score']['roc_auc']:.3f} "
            f"({'yes' if o['models'][m]['approved'] else 'no'})")
    row("next best product hit rate@3: model / popularity", lambda o: _hit_rates(o["models"]["next_best_product"]))
    names = sorted({n for s in scales for n in runs[s]["outcomes"].get("segments", {})})
    for name in names:
        row(f"segment `{name}` (exported rows)", lambda o, n=name: _fmt(o["segments"].get(n)))
    return "### What the runs produced\n\n" + "\n".join(rows) + "\n"


def _hit_rates(nbp: dict) -> str:
    ev = nbp.get("evaluation") or {}
    model = ev.get("hit_rate") or ev.get("model_hit_rate")
    popular = ev.get("popularity_hit_rate") or ev.get("baseline_hit_rate")
    if model is None:
        return json.dumps(ev)[:60]
    return f"{model:.3f} / {popular:.3f}"


def _gate_share(run: dict) -> float:
    gates = sum(v["seconds"] for k, v in run["steps"].items() if k.startswith("gate_"))
    return gates / run["seconds"] if run["seconds"] else 0.0


def charts(runs: dict[int, dict]) -> None:
    # Only the charts need matplotlib (the `bench` extra): the rest is read by tests too.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scales = list(runs)
    labels = [f"{s:,}" for s in scales]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bottom = [0.0] * len(scales)
    for step in STEPS:
        vals = [runs[s]["full_run"]["steps"].get(step, {}).get("seconds", 0) for s in scales]
        ax.bar(labels, vals, bottom=bottom, label=step)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_ylabel("seconds (full run over 30 days)")
    ax.set_xlabel("customers")
    ax.set_yscale("log") if max(bottom) > 20 * min(bottom) else None
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Time per step by scale")
    fig.tight_layout()
    fig.savefig(REPO / "docs" / "performance_time.png", dpi=110)

    fig, ax = plt.subplots(figsize=(8, 4.5))
    series = {
        "pipeline (peak of any step)": [runs[s]["full_run"]["peak_rss_mib"] for s in scales],
        "bare DuckDB reference": [runs[s]["references"].get("duckdb", {}).get("peak_rss_mib", 0) for s in scales],
        "pandas reference": [runs[s]["references"].get("pandas", {}).get("peak_rss_mib", 0) for s in scales],
    }
    width = 0.25
    for i, (name, vals) in enumerate(series.items()):
        ax.bar([x + i * width for x in range(len(scales))], vals, width, label=name)
    ax.set_xticks([x + width for x in range(len(scales))], labels)
    ax.set_ylabel("peak RSS, MiB")
    ax.set_xlabel("customers")
    ax.legend(fontsize=8)
    ax.set_title("Peak memory by scale")
    fig.tight_layout()
    fig.savefig(REPO / "docs" / "performance_memory.png", dpi=110)


def main() -> None:
    runs = latest_per_scale()
    if not runs:
        raise SystemExit("no results in benchmarks/results/: run benchmarks/run.py first")
    charts(runs)
    text = DOC.read_text() if DOC.exists() else f"# Performance\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{tables(runs)}\n{END}{tail}")
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()

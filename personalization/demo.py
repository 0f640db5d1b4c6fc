"""`make demo`: generate a data set, load its history, run the full nightly flow, say where
everything is."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from rich.console import Console

from personalization.config import SOURCES, Settings
from personalization.observability import StepReport
from personalization.pipeline import STEPS, date_range

logger = logging.getLogger(__name__)
console = Console()


def _generate_once(settings: Settings, customers: int, days: int, start: date, seed: int) -> None:
    """Generate unless the same data set is already there (the demo is rerunnable)."""
    from personalization.generate import generate

    params = {"customers": customers, "days": days, "start": start.isoformat(), "seed": seed}
    marker = settings.home / "demo_dataset.json"
    if marker.exists() and json.loads(marker.read_text()) == params:
        console.print(f"[dim]reusing generated data in {settings.landing_dir}[/dim]")
        return
    settings.home.mkdir(parents=True, exist_ok=True)
    summary = generate(out=settings.landing_dir, customers=customers, days=days, seed=seed,
                       start=start, truth_path=settings.home / "truth.parquet")
    marker.write_text(json.dumps(params))
    console.print(f"generated {summary} into {settings.landing_dir}")


def run_demo(settings: Settings, *, customers: int, days: int, start: date, seed: int,
             full_days: int, run_dates: Callable,
             print_plan: Callable) -> None:
    _generate_once(settings, customers, days, start, seed)
    dates = date_range(start, start + timedelta(days=days - 1))
    history, nightly = dates[:-full_days], dates[-full_days:]
    lines: list[SummaryLine] = []
    if history:
        console.rule(f"loading history {history[0]} .. {history[-1]} into the lake")
        run_dates(history, settings, [f"extract_{s}" for s in SOURCES],
                  on_step=lambda ds, step, done: lines.append(SummaryLine(ds, "load lake", done)))
    console.rule(f"nightly runs {nightly[0]} .. {nightly[-1]}")
    run_dates(nightly, settings, list(STEPS),
              on_step=lambda ds, step, done: lines.append(SummaryLine(ds, step, done)))
    console.rule("what happened")
    for text in summary_lines(lines):
        console.print(text, highlight=False, markup=False, overflow="ignore", crop=False)
    _print_dry_run(settings, nightly[-1], print_plan)
    _print_identity_quality(settings)
    _print_where(settings, nightly[-1])


@dataclass
class SummaryLine:
    """One step of one night, with the reports it returned."""

    ds: date
    step: str
    reports: list[StepReport]


# Statuses that need no attention: a passed gate, an empty delivery, a source not delivered
# that is not required.
_FINE = {"ok", "passed", "empty", "skipped"}


def _status(statuses: list[str]) -> str:
    """The one status of a group: the statuses that need attention (warnings, failures), or,
    when there are none, the group's status if all agree, else `ok`."""
    odd = sorted(set(statuses) - _FINE)
    if odd:
        return ",".join(odd)
    return statuses[0] if len(set(statuses)) == 1 else "ok"


def summary_lines(lines: list[SummaryLine]) -> list[str]:
    """The demo's summary as text: one line per step and night (lines of the same step and
    night merged: the history's three extracts are one `load lake` line), a total per night,
    a grand total. Step names are never cut."""
    merged: dict[tuple[date, str], list[StepReport]] = {}
    for line in lines:
        merged.setdefault((line.ds, line.step), []).extend(line.reports)
    width = max([len("night total"), *(len(step) for _, step in merged)])
    header = (f"{'night':<10}  {'step':<{width}}  {'rows in':>11}  {'rows out':>11}  "
              f"{'quarantined':>11}  {'seconds':>8}  status")
    out = [header, "-" * len(header)]

    def row(ds: str, step: str, reports: list[StepReport]) -> str:
        return (f"{ds:<10}  {step:<{width}}  {sum(r.rows_in for r in reports):>11,}  "
                f"{sum(r.rows_out for r in reports):>11,}  "
                f"{sum(r.rows_quarantined for r in reports):>11,}  "
                f"{sum(r.seconds for r in reports):>8.1f}  {_status([r.status for r in reports])}")

    nights = sorted({ds for ds, _ in merged})
    for ds in nights:
        night = [(step, reports) for (d, step), reports in merged.items() if d == ds]
        out += [row(ds.isoformat(), step, reports) for step, reports in night]
        if len(night) > 1:
            out.append(row(ds.isoformat(), "night total", [r for _, rs in night for r in rs]))
    everything = [r for reports in merged.values() for r in reports]
    out.append("-" * len(header))
    out.append(row(f"{len(nights)} nights", "total", everything))
    return out


def _print_dry_run(settings: Settings, ds: date, print_plan: Callable) -> None:
    """What a full (mirror) sync of the last export would change at the ESP, sending nothing."""
    from personalization.esp import sync

    print_plan(sync(ds, "file_drop", settings, dry_run=True, mode="mirror"))


def _print_identity_quality(settings: Settings) -> None:
    truth = settings.home / "truth.parquet"
    try:
        from personalization.warehouse.evaluate import evaluate, format_report
    except ImportError:  # pragma: no cover - evaluation ships with the warehouse
        return
    if truth.exists():
        console.print(format_report(evaluate(truth, settings)))


def _print_where(settings: Settings, last: date) -> None:
    console.rule("where things are")
    rows = [
        ("exports", settings.exports_dir / last.isoformat()),
        ("latest export", settings.exports_dir / "latest"),
        ("quarantine", settings.lake_dir / "quarantine"),
        ("quality results", settings.quality_dir / last.isoformat()),
        ("data docs", settings.quality_dir / "data_docs" / "index.html"),
        ("model cards", settings.models_dir),
        ("warehouse", settings.warehouse_path),
        ("ESP file drop", settings.home / "esp_drop" / last.isoformat()),
    ]
    for label, path in rows:
        mark = "" if path.exists() else " [yellow](not produced)[/yellow]"
        console.print(f"  {label:<16} {path}{mark}")
    try:
        from personalization.portal.users import demo_login
    except ImportError:
        return
    user, password = demo_login(settings)
    console.print(f"\nportal: [bold].venv/bin/personalization serve[/bold]  → http://127.0.0.1:8000"
                  f"  (login: {user} / {password})")

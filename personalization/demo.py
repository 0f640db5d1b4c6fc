"""`make demo`: generate a data set, load its history, run the full nightly flow, say where
everything is."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date, timedelta

from rich.console import Console

from personalization.config import SOURCES, Settings
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
             full_days: int, run_dates: Callable, print_reports: Callable,
             print_plan: Callable) -> None:
    _generate_once(settings, customers, days, start, seed)
    dates = date_range(start, start + timedelta(days=days - 1))
    history, nightly = dates[:-full_days], dates[-full_days:]
    reports = []
    if history:
        console.rule(f"loading history {history[0]} .. {history[-1]} into the lake")
        reports += run_dates(history, settings, [f"extract_{s}" for s in SOURCES])
    console.rule(f"nightly runs {nightly[0]} .. {nightly[-1]}")
    reports += run_dates(nightly, settings, list(STEPS))
    print_reports(reports, "demo run")
    _print_dry_run(settings, nightly[-1], print_plan)
    _print_identity_quality(settings)
    _print_where(settings, nightly[-1])


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

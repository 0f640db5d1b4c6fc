"""`personalization` command line. User mistakes print one line, never a traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer._click import exceptions as click_errors  # typer vendors click

from personalization.config import Settings, load_settings
from personalization.exceptions import PersonalizationError
from personalization.observability import StepReport, configure_logging

app = typer.Typer(
    help="Nightly email-personalization warehouse: extract, dbt, quality gate, scoring, "
    "segments, exports, ESP sync and the marketer portal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
segments_app = typer.Typer(help="Work with segment SQL files.", no_args_is_help=True)
app.add_typer(segments_app, name="segments")
intake_app = typer.Typer(help="Near-real-time event intake (docs/triggers.md).",
                         no_args_is_help=True)
app.add_typer(intake_app, name="intake")
triggers_app = typer.Typer(help="Behavioural triggers: rules under triggers/ (docs/triggers.md).",
                           no_args_is_help=True)
app.add_typer(triggers_app, name="triggers")
console = Console(stderr=True, soft_wrap=True)


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date in YYYY-MM-DD form") from None


DateOpt = typer.Option(None, "--date", help="Logical date (YYYY-MM-DD).")


def _settings(**overrides) -> Settings:
    return load_settings(**overrides)


def _print_reports(reports: list[StepReport], title: str) -> None:
    table = Table(title=title)
    for col in ("step", "ds", "rows in", "rows out", "quarantined", "seconds", "status"):
        table.add_column(col, justify="right" if col not in ("step", "status", "ds") else "left")
    for r in reports:
        table.add_row(r.step, r.ds, f"{r.rows_in:,}", f"{r.rows_out:,}",
                      f"{r.rows_quarantined:,}", f"{r.seconds:.1f}", r.status)
    Console().print(table)


def run_dates(dates: list[date], settings: Settings, steps: list[str],
              on_step: Callable[[date, str, list[StepReport]], None] | None = None,
              full_refresh: bool = False) -> list[StepReport]:
    """Run `steps` for each date in order, with a progress bar; stop at the first failure.

    `on_step(ds, step, reports)` is called after each step (the demo's summary groups by it).
    `full_refresh` rebuilds the marts on the first date only: later dates add their night.
    """
    from personalization.pipeline import run_step

    reports: list[StepReport] = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("nightly run", total=len(dates) * len(steps))
        for ds in dates:
            for name in steps:
                progress.update(task, description=f"{ds} {name}")
                try:
                    done = run_step(name, ds, settings,
                                    full_refresh=full_refresh and ds == dates[0])
                    reports += done
                    if on_step is not None:
                        on_step(ds, name, done)
                except PersonalizationError:
                    _print_reports(reports, "completed before the failure")
                    raise
                progress.advance(task)
    return reports


@app.command()
def generate(
    out: Path = typer.Option(..., "--out", help="Landing directory to write <source>/<ds>/ files into."),
    customers: int = typer.Option(1000, "--customers", min=1, help="Number of real persons."),
    days: int = typer.Option(30, "--days", min=1, help="Number of daily deliveries."),
    seed: int = typer.Option(42, "--seed", help="Random seed: same seed, same files."),
    start: str = typer.Option("2026-01-01", "--start", help="First delivery date (YYYY-MM-DD)."),
    truth: Path = typer.Option(None, "--truth", help="Ground-truth file (default: <out>/../truth.parquet)."),
) -> None:
    """Generate a realistic landing data set (with planted duplicates and dirt) plus ground truth."""
    from personalization.generate import generate as run_generate

    start_date = _parse_date(start)
    summary = run_generate(out=out, customers=customers, days=days, seed=seed,
                           start=start_date, truth_path=truth)
    console.print(f"[green]wrote[/green] {out} ({summary})")


@app.command()
def run(
    ds: str = DateOpt,
    from_date: str = typer.Option(None, "--from-date", help="First date of a backfill range."),
    to_date: str = typer.Option(None, "--to-date", help="Last date of a backfill range."),
    landing: Path = typer.Option(None, "--landing", help="Landing directory (default from settings)."),
    only: str = typer.Option(None, "--only", help="Comma-separated step names to run (default: all)."),
    full_refresh: bool = typer.Option(
        False, "--full-refresh",
        help="Rebuild the marts' incremental tables from the whole lake (first date only): "
             "the same rows, stored afresh. See docs/operations.md, 'Rebuilding the marts'."),
) -> None:
    """Run the nightly flow for one date, or a range of dates (backfill), locally."""
    from personalization.pipeline import STEPS, date_range

    ds, start, end = _parse_date(ds), _parse_date(from_date), _parse_date(to_date)
    if ds and (start or end):
        raise typer.BadParameter("use either --date or --from-date/--to-date")
    if ds:
        dates = [ds]
    elif start and end:
        if end < start:
            raise typer.BadParameter("--to-date is before --from-date")
        dates = date_range(start, end)
    else:
        raise typer.BadParameter("give --date, or both --from-date and --to-date")
    steps = list(STEPS)
    if only:
        steps = [s.strip() for s in only.split(",") if s.strip()]
        unknown = [s for s in steps if s not in STEPS]
        if unknown:
            raise typer.BadParameter(f"unknown step(s) {unknown}; known: {list(STEPS)}")
    settings = _settings(landing_dir=landing)
    if full_refresh and "build_marts" not in steps:
        raise typer.BadParameter("--full-refresh rebuilds the marts: include build_marts in --only")
    reports = run_dates(dates, settings, steps, full_refresh=full_refresh)
    _print_reports(reports, f"nightly run {dates[0]}..{dates[-1]}")


@app.command()
def demo(
    customers: int = typer.Option(2000, "--customers", min=50),
    days: int = typer.Option(14, "--days", min=2),
    start: str = typer.Option("2026-10-01", "--start"),
    seed: int = typer.Option(7, "--seed"),
    full_days: int = typer.Option(2, "--full-days", min=1,
                                  help="Run the whole flow for the last N days; earlier days only load the lake."),
) -> None:
    """Generate data and run the nightly pipeline end to end on the embedded default."""
    from personalization.demo import run_demo

    run_demo(_settings(), customers=customers, days=days, start=_parse_date(start), seed=seed,
             full_days=min(full_days, days), run_dates=run_dates,
             print_plan=print_sync_plan)


@app.command()
def train(ds: str = DateOpt) -> None:
    """Retrain the VIP and churn models as of --date (weekly by default in the DAG)."""
    from personalization.scoring import train as train_models

    _require(ds, "--date")
    _print_reports([train_models(_parse_date(ds), _settings())], "training")


@app.command()
def gate(ds: str = DateOpt, stage: str = typer.Option("marts", "--stage",
         help="lake, marts, segments or export")) -> None:
    """Run the quality gate for one stage."""
    from personalization.quality import gate as quality_gate

    _require(ds, "--date")
    _print_reports([quality_gate(_parse_date(ds), stage, _settings())], f"quality gate {stage}")


@app.command("export")
def export_cmd(ds: str = DateOpt) -> None:
    """Publish the segment exports for --date."""
    from personalization.export import publish

    _require(ds, "--date")
    _print_reports([publish(_parse_date(ds), _settings())], "export")


@app.command()
def sync(
    ds: str = DateOpt,
    esp: str = typer.Option("file_drop", "--esp", help="mailchimp, sendgrid, klaviyo or file_drop"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change; send nothing."),
) -> None:
    """Sync the export of --date (default: latest) to an ESP."""
    from personalization.esp import sync as esp_sync

    settings = _settings()
    report = esp_sync(_parse_date(ds), esp, settings, dry_run=dry_run)
    _print_reports([report], f"sync {esp}")
    if dry_run:
        print_sync_plan(report)


def print_sync_plan(report: StepReport) -> None:
    """Per-segment joins/leaves and the contact writes a dry-run sync would make."""
    plan = report.details.get("plan") or {}
    table = Table(title=f"dry run: what a {report.details.get('mode', '')} sync to "
                        f"{report.details.get('esp', '')} would change")
    keys = ("adds", "removes", "unchanged", "holdout_skipped")
    for col in ("segment", "joins", "leaves", "unchanged", "holdout skipped"):
        table.add_column(col, justify="left" if col == "segment" else "right")
    for name, counts in sorted((plan.get("segments") or {}).items()):
        table.add_row(name, *(f"{counts.get(k, 0):,}" for k in keys))
    table.add_row("[bold]total[/bold]", *(f"{plan.get(k, 0):,}" for k in keys))
    Console().print(table)
    Console().print(f"contacts to write: {plan.get('contact_adds', 0):,} new, "
                    f"{plan.get('contact_updates', 0):,} changed; erasures to propagate: "
                    f"{plan.get('erasures', 0):,}")
    if plan.get("dropped_columns"):
        Console().print(f"segment columns not sent: {', '.join(plan['dropped_columns'])}")


@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host"), port: int = typer.Option(8000, "--port")) -> None:
    """Start the marketer portal."""
    from personalization.portal import serve as run_server

    run_server(_settings(), host=host, port=port)


@app.command("subject-access")
def subject_access_cmd(
    email: str = typer.Option(..., "--email", help="The person's email address."),
    out: Path = typer.Option(..., "--out", help="Folder to write subject_access.json and summary.md into."),
    person: list[str] = typer.Option([], "--person", metavar="UNIFIED_ID",
                                     help="When several persons' records carry the address: "
                                          "the one who asked (repeatable)."),
    all_persons: bool = typer.Option(False, "--all-persons",
                                     help="When several persons' records carry the address: "
                                          "report on all of them (after checking the requester)."),
) -> None:
    """Access request (GDPR Art. 15): write everything held about one person."""
    from personalization.privacy import subject_access

    path = subject_access(email, out, _settings(), person or None, all_persons)
    console.print(f"subject access report: {path} (and {path.parent / 'summary.md'})")


@app.command("erasure-reviews")
def erasure_reviews_cmd(
    confirm: str | None = typer.Option(None, "--confirm", metavar="EMAIL",
                                       help="Confirm the held request for this address: the next "
                                            "night erases every person whose records carry it."),
) -> None:
    """Erasure requests held for review: an address the records of several persons carry
    (info@ of a company) does not say who asked (docs/privacy.md). List them, or confirm one."""
    from personalization.privacy.reviews import confirm as confirm_request
    from personalization.privacy.reviews import held_requests

    settings = _settings()
    if confirm is not None:
        request = confirm_request(confirm, settings)
        console.print(f"confirmed: the next night erases the {request['persons']:,} persons whose "
                      "records carry this address")
        return
    held = held_requests(settings)
    if not held:
        console.print("no erasure request is held for review")
        return
    table = Table(title="erasure requests held for review (the address is suppressed meanwhile)")
    table.add_column("email", no_wrap=True)
    for name in ("requested at", "delivered", "persons"):
        table.add_column(name)
    for r in held:
        table.add_row(r["email"] or f"(hash {r['email_sha256'][:12]}...)", str(r["requested_at"]),
                      str(r["delivered_on"]), f"{r['persons']:,}")
    console.print(table)
    console.print("confirm one with: personalization erasure-reviews --confirm EMAIL")


@app.command("rekey")
def rekey_cmd(
    from_key_file: Path | None = typer.Option(None, "--from-key-file", exists=True, dir_okay=False,
                                              help="File holding the current key (omit: the data is plain)."),
    to_key_file: Path | None = typer.Option(None, "--to-key-file", exists=True, dir_okay=False,
                                            help="File holding the new key (omit: decrypt)."),
) -> None:
    """Encrypt, re-key or decrypt the warehouse and lake in place (docs/privacy.md); then
    change the setting. Run while the DAG and the trigger runner are paused."""
    from personalization.privacy.rekey import rekey

    settings = _settings()
    report = rekey(*(settings.model_copy(update={"encryption_key": None, "encryption_key_file": f})
                     for f in (from_key_file, to_key_file)))
    console.print(f"rewrote {report.rows_out} of {report.rows_in} Parquet files; warehouse "
                  f"{'rewritten' if report.details['warehouse_rewritten'] else 'unchanged'}; "
                  f"now {'encrypted' if report.details['encrypted'] else 'plain'}")


@app.command("evaluate-identity")
def evaluate_identity(truth: Path = typer.Option(..., "--truth", exists=True, dir_okay=False,
                      help="Ground-truth file written by `generate`."),
                      misses: bool = typer.Option(False, "--misses",
                      help="Also say why true pairs were missed: what they share, what stopped them.")) -> None:
    """Score identity resolution against ground truth: pairwise precision, recall, F1 (overall,
    per scope and per source pair) and the largest predicted persons."""
    from personalization.warehouse.evaluate import evaluate, format_details, format_report
    from personalization.warehouse.misses import format_misses

    result = evaluate(truth, _settings(), misses=misses)
    Console().print(format_report(result))
    for table in format_details(result) + (format_misses(result["misses"]) if "misses" in result else []):
        Console().print(table)


@segments_app.command("list")
def segments_list() -> None:
    """List the segments dbt knows about."""
    from personalization.warehouse.catalog import list_segments

    table = Table("segment", "owner", "expires after", "merge fields", "description")
    for s in list_segments(_settings()):
        table.add_row(s.name, s.owner, f"{s.expires_after_days} d", ", ".join(s.merge_fields),
                      s.description[:60])
    Console().print(table)


@segments_app.command("preview")
def segments_preview(file: Path = typer.Argument(..., exists=True, dir_okay=False),
                     ds: str = DateOpt, limit: int = typer.Option(10, "--limit")) -> None:
    """Build one segment SQL file against the warehouse and show its size and a sample."""
    from personalization.warehouse.preview import preview

    Console().print(preview(file, _parse_date(ds), _settings(), limit=limit))


@intake_app.command("serve")
def intake_serve(host: str = typer.Option("127.0.0.1", "--host"),
                 port: int = typer.Option(8100, "--port")) -> None:
    """Accept signed pixel events on POST /events (secret: PERSONALIZATION_INTAKE_SECRET)."""
    from personalization.intake import serve as run_intake

    run_intake(_settings(), host=host, port=port)


def _parse_now(value: str | None):
    from datetime import UTC, datetime

    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO timestamp") from None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


@triggers_app.command("run")
def triggers_run(once: bool = typer.Option(False, "--once", help="Evaluate once and exit."),
                 now: str = typer.Option(None, "--now", help="Evaluate as of this ISO time "
                                         "(UTC unless it has an offset); default: the clock."),
                 every: float = typer.Option(20.0, "--every", min=1,
                                             help="Seconds between evaluations (loop).")) -> None:
    """Evaluate the trigger rules and send what is due (at most once per trigger and cart)."""
    from personalization.triggers import run_loop, run_once

    settings = _settings()
    if once or now:
        report = run_once(settings, now=_parse_now(now))
        table = Table("trigger", "sent", "suppressed", "failed",
                      title=f"triggers as of {report.now:%Y-%m-%d %H:%M:%S} UTC")
        for name, counts in sorted(report.decisions.items()):
            table.add_row(name, *(f"{counts.get(k, 0):,}" for k in ("sent", "suppressed", "failed")))
        Console().print(table)
        Console().print(f"events read: {report.events_read:,}; deferred (quiet hours or one "
                        f"send per person per tick): {report.deferred:,}; {report.seconds:.1f} s")
        return
    run_loop(settings, every)


@triggers_app.command("list")
def triggers_list() -> None:
    """List the trigger rules and their timing."""
    from personalization.triggers import load_rules

    table = Table("trigger", "wait", "cool-down", "max age", "campaign", "merge fields")
    for r in load_rules(_settings().triggers_dir):
        table.add_row(r.name, f"{r.wait_minutes} min", f"{r.cooldown_hours:g} h",
                      f"{r.max_age_hours:g} h", r.campaign, ", ".join(f.name for f in r.merge_fields))
    Console().print(table)


def _require(value, flag: str) -> None:
    if value is None:
        raise typer.BadParameter(f"{flag} is required")


def main(argv: list[str] | None = None) -> int:
    """Entry point: one readable line for every expected error."""
    configure_logging("WARNING")
    logging.getLogger("personalization").setLevel(logging.INFO)
    try:
        app(args=argv, standalone_mode=False)
        return 0
    except typer.Abort:
        console.print("aborted")
        return 130
    except click_errors.NoArgsIsHelpError as e:
        console.print(e.format_message() if hasattr(e, "format_message") else str(e))
        return 0
    except click_errors.UsageError as e:
        hint = f" (see `personalization {e.ctx.info_name if e.ctx else ''} --help`)"
        console.print(f"[red]error:[/red] {e.format_message()}{hint}", highlight=False)
        return 2
    except typer.Exit as e:
        return e.exit_code
    except PersonalizationError as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        return 1


if __name__ == "__main__":
    sys.exit(main())

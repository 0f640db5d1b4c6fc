"""One ESP sync run: build the adapter, plan against the sync state, apply, log a summary."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import date

from personalization.config import Settings
from personalization.esp.base import MODES, Adapter, SyncPlan, SyncState
from personalization.esp.reader import read_export
from personalization.esp.sync_log import SyncLog, sync_db_path
from personalization.exceptions import SyncError
from personalization.observability import StepReport, log_event, timed

logger = logging.getLogger(__name__)

ADAPTERS = ("file_drop", "mailchimp", "sendgrid", "klaviyo")


def make_adapter(esp: str, settings: Settings, log: SyncLog, mode: str) -> Adapter:
    """Build the adapter for `esp` with its credentials (raises `SyncError` if missing)."""
    from personalization.esp.credentials import resolve_credentials

    if esp == "file_drop":
        from personalization.esp.file_drop import FileDropAdapter

        return FileDropAdapter(settings, log, mode)
    if esp == "mailchimp":
        from personalization.esp.mailchimp import MailchimpAdapter

        return MailchimpAdapter(settings, log, mode,
                                credentials=resolve_credentials(esp, need_list_id=True))
    if esp == "sendgrid":
        from personalization.esp.sendgrid import SendGridAdapter

        return SendGridAdapter(settings, log, mode, credentials=resolve_credentials(esp))
    if esp == "klaviyo":
        from personalization.esp.klaviyo import KlaviyoAdapter

        return KlaviyoAdapter(settings, log, mode, credentials=resolve_credentials(esp))
    raise SyncError(f"unknown ESP {esp!r}; known: {', '.join(ADAPTERS)}")


def _reads_contacts(esp: str) -> bool:
    """Whether the adapter for `esp` plans from the contacts' fields (API ESPs) or only from
    the emails (the file drop: `read_export` then skips building a Python row per contact)."""
    if esp == "file_drop":
        from personalization.esp.file_drop import FileDropAdapter

        return FileDropAdapter.reads_contacts
    return True


def sync(ds: date | None, esp: str, settings: Settings, dry_run: bool = False,
         mode: str | None = None) -> StepReport:
    """Sync the export of `ds` (None = latest) to `esp`.

    Args:
        ds: Logical date of the export; None takes `<exports>/latest`.
        esp: `file_drop`, `mailchimp`, `sendgrid` or `klaviyo`.
        settings: Settings (`esp_mode`, retry/backoff, `home` for the sync log).
        dry_run: Plan only: report adds/updates/removes/erasures, send no change.
        mode: `delta` or `mirror`; defaults to `settings.esp_mode`.

    Returns:
        A StepReport: rows_in = records planned, rows_out = records synced ok,
        rows_quarantined = records the ESP rejected (also in the sync log).

    Raises:
        SyncError: missing credentials, no export, or an ESP failing after all retries.
    """
    mode = mode or settings.esp_mode
    if mode not in MODES:
        raise SyncError(f"unknown sync mode {mode!r}; known: {', '.join(MODES)}")
    if esp not in ADAPTERS:
        raise SyncError(f"unknown ESP {esp!r}; known: {', '.join(ADAPTERS)}")
    with timed() as t:
        export = read_export(ds, settings, contacts=_reads_contacts(esp))
        run_id = uuid.uuid4().hex[:12]
        log = SyncLog(sync_db_path(settings.home), esp, export.ds, run_id)
        try:
            adapter = make_adapter(esp, settings, log, mode)
            try:
                state = (SyncState(log.state(sorted(export.segments)), log.erased())
                         if adapter.reads_contacts else SyncState({}, set()))
                plan = adapter.plan(export, state)
                outcomes = [] if dry_run else adapter.apply(plan)
            except SyncError as e:
                # What was applied before the failure is in the log and state: a rerun
                # resumes from there.
                _write_summary(settings, {"run_id": run_id, "esp": esp,
                                          "ds": export.ds.isoformat(), "mode": mode,
                                          "dry_run": dry_run, "status": "failed",
                                          "error": str(e), "http_calls": log.http_calls,
                                          "http_retries": log.http_retries})
                raise
            finally:
                adapter.close()
        finally:
            log.close()
    ok = sum(o.status == "ok" for o in outcomes)
    failed = len(outcomes) - ok
    summary = _summary(plan, run_id, dry_run, ok, failed, log, t["seconds"])
    _write_summary(settings, summary)
    status = "dry_run" if dry_run else ("partial" if failed else "ok")
    log_event(logger, "esp_sync", logging.WARNING if failed else logging.INFO, esp=esp,
              ds=export.ds.isoformat(), mode=mode, dry_run=dry_run, planned=plan.records,
              ok=ok, failed=failed, http_calls=log.http_calls, retries=log.http_retries,
              seconds=t["seconds"])
    return StepReport(step=f"sync_{esp}", ds=export.ds.isoformat(), rows_in=plan.records,
                      rows_out=ok, rows_quarantined=failed, seconds=t["seconds"],
                      status=status, details=summary)


def _summary(plan: SyncPlan, run_id: str, dry_run: bool, ok: int, failed: int,
             log: SyncLog, seconds: float) -> dict:
    return {"run_id": run_id, "esp": plan.esp, "ds": plan.ds.isoformat(), "mode": plan.mode,
            "dry_run": dry_run, "plan": plan.counts(), "records_ok": ok,
            "records_failed": failed, "status": "dry_run" if dry_run else
            ("partial" if failed else "ok"), "http_calls": log.http_calls,
            "http_retries": log.http_retries, "seconds": seconds}


def _write_summary(settings: Settings, summary: dict) -> None:
    """Per-run JSON next to the sync log: `<home>/esp_sync_runs/<esp>/<ds>/<run_id>.json`."""
    out = settings.home / "esp_sync_runs" / summary["esp"] / summary["ds"]
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{summary['run_id']}.json").write_text(json.dumps(summary, indent=2))

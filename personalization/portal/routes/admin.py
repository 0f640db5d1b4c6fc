"""Admin-only actions. Marketers are read-only: every route here answers them 403."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from datetime import date
from pathlib import Path

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse

from personalization.observability import log_event
from personalization.portal import store
from personalization.portal.auth import require_admin, require_csrf
from personalization.portal.users import User
from personalization.portal.web import settings_of

logger = logging.getLogger(__name__)
router = APIRouter()
RERUN_LOCK = "portal_rerun.lock"


def try_lock(path: Path) -> int | None:
    """An exclusive lock on `path` (works across worker processes), or None when it is held."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def release(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


@router.post("/admin/rerun-export")
def rerun_export(request: Request, ds: str = Form(...),
                 csrf_token_field: str = Form("", alias="csrf_token"),
                 user: User = Depends(require_admin)):
    """Republish the export of `ds` in the background (the export step is idempotent).

    Only dates with a published export can be rerun, and one rerun at a time: a second
    request while one runs gets 409.
    """
    require_csrf(request, csrf_token_field)
    settings = settings_of(request)
    try:
        day = date.fromisoformat(ds)
    except ValueError:
        raise HTTPException(422, "The date must be YYYY-MM-DD.") from None
    if day.isoformat() not in store.export_dates(settings):
        raise HTTPException(422, f"There is no published export for {day.isoformat()} to rerun.")
    lock = try_lock(settings.home / RERUN_LOCK)
    if lock is None:
        log_event(logger, "portal_rerun_refused", level=logging.WARNING, ds=day.isoformat(),
                  reason="a rerun is already running")
        raise HTTPException(409, "A rerun is already running; wait for it to finish and try again.")
    runner = request.app.state.rerun_export

    def work() -> None:
        try:
            runner(day, settings)
            log_event(logger, "portal_rerun_done", ds=day.isoformat())
        except Exception as e:  # noqa: BLE001 - a background failure must be logged, not lost
            log_event(logger, "portal_rerun_failed", level=logging.ERROR, ds=day.isoformat(),
                      error=str(e))
        finally:
            release(lock)

    log_event(logger, "portal_rerun_export", ds=day.isoformat(), role=user.role)
    threading.Thread(target=work, name=f"rerun-export-{day}", daemon=True).start()
    return RedirectResponse(f"/exports/{day.isoformat()}?rerun=started", status_code=303)


@router.post("/admin/subject-access")
def subject_access_download(request: Request, email: str = Form(...),
                            csrf_token_field: str = Form("", alias="csrf_token"),
                            user: User = Depends(require_admin)):
    """Access request (GDPR Art. 15): the JSON report for `email`, as a download.

    Built in a temp folder that is deleted once sent, so no copy stays on the server; the
    request is logged with the address's hash prefix only."""
    import shutil
    import tempfile

    from fastapi.responses import Response

    from personalization.exceptions import PersonalizationError
    from personalization.privacy import email_sha256, subject_access

    require_csrf(request, csrf_token_field)
    folder = tempfile.mkdtemp(prefix="sar-")
    try:
        path = subject_access(email, Path(folder), settings_of(request))
        body = path.read_bytes()
    except PersonalizationError as e:
        raise HTTPException(400, str(e)) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    log_event(logger, "portal_subject_access", role=user.role,
              email_sha256_prefix=email_sha256(email)[:12])
    return Response(body, media_type="application/json", headers={
        "Content-Disposition": 'attachment; filename="subject_access.json"'})


@router.get("/admin/consent/{ds}")
def consent_of_exported_contact(request: Request, ds: str, unified_id: str,
                                user: User = Depends(require_admin)):
    """Which source record and timestamp gave the consent an export relied on for a contact
    (the export's `consent.parquet`)."""
    import duckdb

    from personalization.portal import store

    root = store.export_root(settings_of(request), ds)
    path = root / "consent.parquet" if root else None
    if path is None or not path.is_file():
        raise HTTPException(404, "no consent record for that export")
    with duckdb.connect() as con:
        cur = con.execute("SELECT * FROM read_parquet(?) WHERE unified_id = ?", [str(path), unified_id])
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    if not rows:
        raise HTTPException(404, "that contact is not in this export")
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in rows[0].items()}

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

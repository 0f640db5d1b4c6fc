"""Admin-only actions. Marketers are read-only: every route here answers them 403."""

from __future__ import annotations

import logging
import threading
from datetime import date

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse

from personalization.observability import log_event
from personalization.portal.auth import require_admin, require_csrf
from personalization.portal.users import User
from personalization.portal.web import settings_of

logger = logging.getLogger(__name__)
router = APIRouter()


@router.post("/admin/rerun-export")
def rerun_export(request: Request, ds: str = Form(...),
                 csrf_token_field: str = Form("", alias="csrf_token"),
                 user: User = Depends(require_admin)):
    """Republish the export of `ds` in the background (the export step is idempotent)."""
    require_csrf(request, csrf_token_field)
    try:
        day = date.fromisoformat(ds)
    except ValueError:
        raise HTTPException(400, "ds must be YYYY-MM-DD") from None
    runner = request.app.state.rerun_export
    settings = settings_of(request)

    def work() -> None:
        try:
            runner(day, settings)
        except Exception as e:  # noqa: BLE001 - a background failure must be logged, not lost
            log_event(logger, "portal_rerun_failed", level=logging.ERROR, ds=ds, error=str(e))

    log_event(logger, "portal_rerun_export", ds=ds, role=user.role)
    threading.Thread(target=work, name=f"rerun-export-{ds}", daemon=True).start()
    return RedirectResponse(f"/exports/{ds}?rerun=started", status_code=303)

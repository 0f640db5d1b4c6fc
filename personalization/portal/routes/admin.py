"""Admin-only actions. Marketers are read-only: every route here answers them 403."""

from __future__ import annotations

import logging
import threading
from datetime import date
from pathlib import Path

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

"""Email preview for one contact, picked by row position or unified_id (never by email)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from personalization.portal import store
from personalization.portal.auth import current_user
from personalization.portal.emails import fallbacks_of, inbox_line, merge_fields, render_email
from personalization.portal.security import mask_email
from personalization.portal.users import User
from personalization.portal.web import render, settings_of

router = APIRouter()
CONTACTS_LISTED = 50
# Row positions beyond any real segment are a typo, answered 422 (DuckDB's OFFSET is int64).
MAX_ROW = 2**31
# The email is a document of its own: inline styles allowed, nothing else (no scripts, no
# remote images), and it may only be framed by the portal itself.
EMAIL_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


def _contact(request: Request, ds: str, segment: str, uid: str | None, row: int | None):
    export = store.load_export(settings_of(request), ds)
    if export is None or export.segment(segment) is None:
        raise HTTPException(404, "no such segment in this export")
    contact = store.member(export, segment, unified_id=uid, row=row if uid is None else None)
    return export, contact


@router.get("/preview")
def preview_page(request: Request, segment: str | None = None, ds: str = "latest",
                 uid: str | None = None, row: int | None = Query(None, ge=0, le=MAX_ROW),
                 view: str = Query("desktop", pattern="^(desktop|mobile)$"),
                 user: User = Depends(current_user)):
    settings = settings_of(request)
    export = store.load_export(settings, ds)
    segment = segment or (export.segments[0]["name"] if export and export.segments else None)
    contacts, contact = [], None
    if export is not None and segment and export.segment(segment) is not None:
        contacts = store.members(export, segment, limit=CONTACTS_LISTED)
        if uid is not None or row is not None:
            _, contact = _contact(request, export.ds, segment, uid, row)
            if contact is None:
                raise HTTPException(404, "no such contact in this segment")
        elif contacts:
            _, contact = _contact(request, export.ds, segment, None, 0)
    return render(request, "preview.html", export=export, segment=segment, contacts=contacts,
                  contact=contact, masked_email=mask_email((contact or {}).get("email")),
                  inbox=inbox_line(contact, segment) if contact else None, view=view,
                  fields=merge_fields(contact) if contact else [],
                  fallbacks=fallbacks_of(contact) if contact else [])


@router.get("/preview/email")
def preview_email(request: Request, segment: str, ds: str = "latest", uid: str | None = None,
                  row: int | None = Query(None, ge=0, le=MAX_ROW),
                  user: User = Depends(current_user)):
    _, contact = _contact(request, ds, segment, uid, row if uid is None else None)
    if contact is None:
        raise HTTPException(404, "no such contact in this segment")
    return HTMLResponse(render_email(contact, segment), headers={"Content-Security-Policy": EMAIL_CSP})

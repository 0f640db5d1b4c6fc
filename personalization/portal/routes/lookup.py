"""Contact lookup by email: POSTed (never in a URL), masked on screen, never logged."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request

from personalization.portal.auth import current_user, require_csrf
from personalization.portal.lookup import MAX_EXPORTS, lookup
from personalization.portal.users import User
from personalization.portal.web import render, settings_of

router = APIRouter()


@router.get("/lookup")
def lookup_form(request: Request, user: User = Depends(current_user)):
    return render(request, "lookup.html", result=None, error=None, max_exports=MAX_EXPORTS)


@router.post("/lookup")
def lookup_submit(request: Request, email: str = Form(""),
                  csrf_token_field: str = Form("", alias="csrf_token"),
                  user: User = Depends(current_user)):
    require_csrf(request, csrf_token_field)
    address = email.strip()
    if "@" not in address or len(address) > 254 or any(c.isspace() for c in address):
        return render(request, "lookup.html", status_code=422, result=None, max_exports=MAX_EXPORTS,
                      error="Type the whole email address: the lookup matches it exactly.")
    return render(request, "lookup.html", result=lookup(settings_of(request), address), error=None,
                  max_exports=MAX_EXPORTS)

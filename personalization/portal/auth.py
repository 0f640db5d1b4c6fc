"""Who is asking: session login (users file) or a trusted SSO proxy header; CSRF checks.

Every page depends on `current_user`; unauthenticated requests are sent to `/login`.
Header mode (`PERSONALIZATION_PORTAL_AUTH=header`) trusts `X-Forwarded-User`: run it only
behind a reverse proxy that authenticates users and strips that header from client requests.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse

from personalization.observability import log_event
from personalization.portal.security import csrf_ok, csrf_token, scrub
from personalization.portal.users import User, authenticate, load_users, role_of
from personalization.portal.web import render, settings_of

logger = logging.getLogger(__name__)

USER_HEADER = "X-Forwarded-User"
# Brute-force brake: this many failed logins per client within the window → 429.
MAX_FAILURES, FAILURE_WINDOW_S = 10, 300

router = APIRouter()


class NotAuthenticated(Exception):
    """Raised by `current_user`; the app turns it into a redirect to the login page."""

    def __init__(self, next_path: str = "/"):
        self.next_path = next_path


def current_user(request: Request) -> User:
    """The signed-in user (dependency of every page)."""
    settings = settings_of(request)
    if settings.portal_auth == "header":
        name = (request.headers.get(USER_HEADER) or "").strip()
        if not name:
            raise HTTPException(401, "no authenticated user from the proxy")
        user = User(name=name, role=role_of(settings, name))
    else:
        data = request.session.get("user") or {}
        entry = load_users(settings).get(str(data.get("name", "")))
        if entry is None:  # not signed in, or the user was removed since
            request.session.pop("user", None)
            raise NotAuthenticated(request.url.path)
        user = User(name=data["name"], role=entry.get("role", "marketer"))
    request.state.user = user
    return user


def require_admin(user: User = Depends(current_user)) -> User:
    """Only admins may trigger runs; marketers are read-only."""
    if not user.is_admin:
        raise HTTPException(403, "admins only")
    return user


def require_csrf(request: Request, token: str | None) -> None:
    if not csrf_ok(request.session, token):
        log_event(logger, "portal_csrf_refused", level=logging.WARNING, path=request.url.path)
        raise HTTPException(403, "invalid or missing form token; reload the page and try again")


def _safe_next(value: str | None) -> str:
    # Only local paths: no scheme, no `//host` (open redirect).
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _failures(request: Request) -> deque:
    store = request.app.state.login_failures
    key = request.client.host if request.client else "?"
    q = store[key]
    while q and q[0] < time.monotonic() - FAILURE_WINDOW_S:
        q.popleft()
    return q


@router.get("/login")
def login_form(request: Request, next: str = "/"):
    if settings_of(request).portal_auth == "header":
        return RedirectResponse("/", status_code=303)
    return render(request, "login.html", next=_safe_next(next), error=None)


@router.post("/login")
def login(request: Request, username: str = Form(""), password: str = Form(""),
          csrf_token_field: str = Form("", alias="csrf_token"), next: str = Form("/")):
    settings = settings_of(request)
    if settings.portal_auth == "header":
        return RedirectResponse("/", status_code=303)
    require_csrf(request, csrf_token_field)
    failures = _failures(request)
    if len(failures) >= MAX_FAILURES:
        log_event(logger, "portal_login_throttled", level=logging.WARNING)
        return render(request, "login.html", status_code=429, next=_safe_next(next),
                      error="Too many failed attempts; wait a few minutes.")
    user = authenticate(settings, username.strip(), password)
    if user is None:
        failures.append(time.monotonic())
        # The name may be an email: log it masked.
        log_event(logger, "portal_login_failed", level=logging.WARNING, user=scrub(username[:64]))
        return render(request, "login.html", status_code=401, next=_safe_next(next),
                      error="Wrong user name or password.")
    failures.clear()
    request.session.clear()  # new session on login (no fixation), new CSRF token
    request.session["user"] = {"name": user.name}
    csrf_token(request.session)
    log_event(logger, "portal_login", user=scrub(user.name), role=user.role)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, csrf_token_field: str = Form("", alias="csrf_token")):
    require_csrf(request, csrf_token_field)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


def login_redirect(request: Request, exc: NotAuthenticated):
    return RedirectResponse(f"/login?next={quote(_safe_next(exc.next_path))}", status_code=303)

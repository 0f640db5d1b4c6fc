"""Who is asking: session login (users file) or a trusted SSO proxy header; CSRF checks.

Every page depends on `current_user`; unauthenticated requests are sent to `/login`.
Header mode (`PERSONALIZATION_PORTAL_AUTH=header`) trusts `X-Forwarded-User`: run it only
behind a reverse proxy that authenticates users and strips that header from client requests.
"""

from __future__ import annotations

import logging
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse

from personalization.observability import log_event
from personalization.portal.security import csrf_ok, csrf_token, log_safe
from personalization.portal.sessions import SessionStore
from personalization.portal.users import User, authenticate, load_users, role_of
from personalization.portal.web import render, settings_of

logger = logging.getLogger(__name__)

USER_HEADER = "X-Forwarded-User"
# Brute-force brake, per user name + client address: someone guessing from one address is
# slowed down there without locking the real user out anywhere else. A looser cap per
# address stops one client from trying many user names.
MAX_FAILURES, MAX_ADDRESS_FAILURES, FAILURE_WINDOW_S = 10, 50, 300

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
        name = sessions_of(request).user_of(request.session.get("sid"))
        entry = load_users(settings).get(name) if name else None
        if entry is None:  # not signed in, signed out, expired, or the user was removed
            request.session.pop("sid", None)
            query = request.url.query
            raise NotAuthenticated(request.url.path + (f"?{query}" if query else ""))
        user = User(name=name, role=entry.get("role", "marketer"))
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


def sessions_of(request: Request) -> SessionStore:
    return request.app.state.sessions


def _safe_next(value: str | None) -> str:
    """A local path (with its query string) to go to after login, else `/`.

    Refused (open redirect): `//host`, schemes, backslashes, and any control character or
    space (browsers drop tabs and newlines, so `/<tab>/host` would become `//host`).
    """
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(c) < 33 or ord(c) == 127 for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def _throttle_keys(request: Request, username: str) -> tuple[str, str]:
    address = request.client.host if request.client else "?"
    return f"user:{username.strip().lower()}|{address}", f"address:{address}"


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
    store = sessions_of(request)
    user_key, address_key = _throttle_keys(request, username)
    by_user, by_address = store.failures(user_key, address_key)
    if by_user >= MAX_FAILURES or by_address >= MAX_ADDRESS_FAILURES:
        # Refused before the password is checked: a throttled guesser learns nothing.
        log_event(logger, "portal_login_throttled", level=logging.WARNING,
                  user=log_safe(username[:64]))
        return render(request, "login.html", status_code=429, next=_safe_next(next),
                      error="Too many failed attempts; wait a few minutes.")
    user = authenticate(settings, username.strip(), password)
    if user is None:
        store.record_failure(user_key, address_key)
        # The name may be an email (masked) or hold anything (escaped: no forged log lines).
        log_event(logger, "portal_login_failed", level=logging.WARNING,
                  user=log_safe(username[:64]))
        return render(request, "login.html", status_code=401, next=_safe_next(next),
                      error="Wrong user name or password.")
    store.clear_failures(user_key)
    store.end(request.session.get("sid"))
    request.session.clear()  # new session on login (no fixation), new CSRF token
    request.session["sid"] = store.start(user.name)
    csrf_token(request.session)
    log_event(logger, "portal_login", user=log_safe(user.name), role=user.role)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, csrf_token_field: str = Form("", alias="csrf_token")):
    require_csrf(request, csrf_token_field)
    # Ended on the server: a copy of the cookie saved before signing out no longer works.
    sessions_of(request).end(request.session.get("sid"))
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


def login_redirect(request: Request, exc: NotAuthenticated):
    target = quote(_safe_next(exc.next_path), safe="/")
    return RedirectResponse(f"/login?next={target}", status_code=303)

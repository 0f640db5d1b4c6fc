"""The FastAPI app: middleware (sessions, security headers, access log), routes, `serve`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from personalization.config import Settings
from personalization.observability import log_event
from personalization.portal import auth, errors
from personalization.portal.routes import (
    ab,
    admin,
    docs,
    exports,
    lookup,
    preview,
    segments,
    triggers,
)
from personalization.portal.security import log_safe, session_secret
from personalization.portal.sessions import SESSIONS_FILE, SessionStore

logger = logging.getLogger(__name__)

SESSION_COOKIE = "portal_session"
SESSION_MAX_AGE_S = 8 * 3600
# Portal pages: own CSS only, no scripts at all, inline SVG is markup (not a resource).
PAGE_CSP = ("default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
            "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
STATIC_DIR = Path(__file__).parent / "static"


def _default_rerun(ds: date, settings: Settings) -> Any:
    from personalization.export import publish

    return publish(ds, settings)


def create_app(settings: Settings,
               rerun_export: Callable[[date, Settings], Any] | None = None) -> FastAPI:
    """The portal app for `settings` (tests use it with `TestClient`).

    Args:
        settings: where exports, quality results, models and the lake live.
        rerun_export: what the admin "rerun export" button calls (default: `export.publish`).
    """
    app = FastAPI(title="Personalization portal", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.settings = settings
    app.state.rerun_export = rerun_export or _default_rerun
    app.state.sessions = SessionStore(settings.home / SESSIONS_FILE, SESSION_MAX_AGE_S,
                                      auth.FAILURE_WINDOW_S)

    @app.middleware("http")
    async def headers_and_access_log(request: Request, call_next):
        start = time.perf_counter()

        def log(status: int, **extra: Any) -> None:
            # Path only (no query string), emails masked, control characters escaped: no
            # personal data and no forged lines in the log.
            log_event(logger, "portal_request", level=logging.ERROR if status >= 500 else logging.INFO,
                      method=request.method, path=log_safe(request.url.path), status=status,
                      ms=round((time.perf_counter() - start) * 1000, 1), **extra)

        try:
            response = await call_next(request)
        except Exception as e:
            # The error page is rendered further out; the request is logged here all the same.
            log(500, error=type(e).__name__)
            raise
        response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
        log(response.status_code)
        return response

    # Signed cookie (itsdangerous), HttpOnly always; Secure when served over HTTPS.
    app.add_middleware(SessionMiddleware, secret_key=session_secret(settings),
                       session_cookie=SESSION_COOKIE, max_age=SESSION_MAX_AGE_S,
                       same_site="lax", https_only=settings.portal_https_only)
    app.add_exception_handler(auth.NotAuthenticated, auth.login_redirect)
    app.add_exception_handler(StarletteHTTPException, errors.http_error)
    app.add_exception_handler(RequestValidationError, errors.validation_error)
    app.add_exception_handler(Exception, errors.server_error)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    for module in (auth, exports, segments, preview, lookup, ab, triggers, docs, admin):
        app.include_router(module.router)
    return app


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the portal with uvicorn (its own access log is off: ours masks personal data)."""
    import uvicorn

    log_event(logger, "portal_start", host=host, port=port, auth=settings.portal_auth,
              exports=str(settings.exports_dir))
    uvicorn.run(create_app(settings), host=host, port=port, access_log=False,
                proxy_headers=settings.portal_auth == "header", log_level="info")

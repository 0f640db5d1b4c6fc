"""Error pages: every 4xx/5xx is a page in the portal's look with one plain sentence.

The portal has no JSON API: a marketer who mistypes a URL or a parameter gets a page that
says what went wrong and where to go, never raw JSON or a traceback.
"""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from personalization.portal.web import TEMPLATES

logger = logging.getLogger(__name__)

TITLES = {400: "Bad request", 401: "Not signed in", 403: "Not allowed", 404: "Not found",
          409: "Busy",
          405: "Not allowed", 422: "Check the address", 429: "Too many requests",
          500: "Something went wrong"}


def _page(request: Request, status: int, message: str, problems: list[str] | None = None,
          headers: dict[str, str] | None = None):
    # Not `render()`: the session may be gone (500s are rendered outside its middleware), so
    # only an existing CSRF token is reused and none is created.
    session = request.scope.get("session") or {}
    return TEMPLATES.TemplateResponse(
        request, "error.html",
        {"user": getattr(request.state, "user", None), "status": status,
         "title": TITLES.get(status, "Error"), "message": message, "problems": problems or [],
         "csrf_token": session.get("csrf", ""),
         "auth_mode": request.app.state.settings.portal_auth},
        status_code=status, headers=headers)


async def http_error(request: Request, exc: HTTPException):
    return _page(request, exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))


def _describe(error: dict) -> str:
    """`page: input should be greater than or equal to 0` (the parameter, then pydantic's words)."""
    where = ".".join(str(p) for p in error.get("loc", ())[1:]) or "input"
    return f"{where}: {str(error.get('msg', 'invalid value')).lower()}"


async def validation_error(request: Request, exc: RequestValidationError):
    problems = [_describe(e) for e in exc.errors()]
    return _page(request, 422, "Some part of the address is not valid.", problems)


async def server_error(request: Request, exc: Exception):
    logger.error("portal error on %s: %s", request.url.path.encode("unicode_escape").decode(),
                 type(exc).__name__, exc_info=exc)
    return _page(request, 500, "The page could not be built. The error is in the portal's "
                               "log; try again later or tell the data team.")

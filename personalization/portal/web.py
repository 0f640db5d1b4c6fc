"""Shared bits of the routes: rendering pages, the settings of the running app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates

from personalization.config import Settings, dbt_vars
from personalization.portal.security import csrf_token
from personalization.portal.text import plain_description

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f} %"


def _signed_pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.1f} %"


def _signed_pp(value: float | None) -> str:
    """A difference of two rates in percentage points."""
    return "–" if value is None else f"{value * 100:+.1f} pp"


def _pvalue(value: float | None) -> str:
    if value is None:
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


TEMPLATES.env.filters.update(pct=_pct, signed_pct=_signed_pct, signed_pp=_signed_pp, pvalue=_pvalue,
                             thousands=lambda v: f"{int(v or 0):,}")


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def render(request: Request, name: str, status_code: int = 200, **context: Any):
    """A page with the signed-in user, the session's CSRF token and the auth mode."""
    context.setdefault("user", getattr(request.state, "user", None))
    context["csrf_token"] = csrf_token(request.session)
    context["auth_mode"] = settings_of(request).portal_auth
    variables = dbt_vars(settings_of(request).project_dir)
    context["describe"] = lambda text: plain_description(text, variables)
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status_code)

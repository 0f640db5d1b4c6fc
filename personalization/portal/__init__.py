"""Marketer portal: exports, segment trends, email previews, A/B results (FastAPI + Jinja2).

Public surface: `create_app(settings)` (tests), `serve(settings, host, port)` (CLI), and the
user helpers `add_user` / `demo_login`.
"""

from personalization.portal.app import create_app, serve
from personalization.portal.users import add_user, demo_login

__all__ = ["add_user", "create_app", "demo_login", "serve"]

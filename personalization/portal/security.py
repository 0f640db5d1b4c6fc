"""Small security helpers: the session secret, CSRF tokens, safe file paths, masking."""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
from pathlib import Path

from personalization.config import Settings

SECRET_FILE = "portal_secret"
_EMAIL = re.compile(r"[^\s/@?&=]+@[^\s/@?&=]+\.[A-Za-z]{2,}")
_DS = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LOG_PLAIN = re.compile(r"[A-Za-z0-9_.@*+/:-]*")


def session_secret(settings: Settings) -> str:
    """The cookie-signing secret from `<home>/portal_secret`, created once (mode 0600)."""
    path = settings.home / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker created it first
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def csrf_token(session: dict) -> str:
    """This session's CSRF token (created on first use)."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(session: dict, submitted: str | None) -> bool:
    """True when a submitted form carries this session's token."""
    expected = session.get("csrf")
    return bool(expected and submitted) and hmac.compare_digest(str(expected), str(submitted))


def mask_email(email: str | None) -> str:
    """`jane@example.com` → `j***@example.com` (for screens; files keep full addresses)."""
    if not email or "@" not in email:
        return ""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def scrub(text: str) -> str:
    """Mask anything that looks like an email address (for log lines)."""
    return _EMAIL.sub(lambda m: mask_email(m.group(0)), text)


def log_safe(text: str) -> str:
    """A user-supplied value for a log line: emails masked, and anything beyond a plain token
    JSON-quoted, so a newline or `key=value` in a user name cannot forge a log line."""
    masked = scrub(text)
    return masked if _LOG_PLAIN.fullmatch(masked) else json.dumps(masked)


def is_ds(value: str) -> bool:
    return bool(_DS.match(value))


def safe_child(root: Path, relative: str) -> Path | None:
    """`root/relative` if it is a regular file that really lives under `root`, else None.

    Refuses absolute paths, `..` and hidden segments (work in progress), backslashes and NUL,
    and anything whose resolved path (symlinks followed) leaves `root`.
    """
    if not relative or "\x00" in relative or "\\" in relative or relative.startswith("/"):
        return None
    parts = relative.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    base = root.resolve()
    try:
        target = (base / relative).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target

"""Portal users: a YAML file of salted scrypt hashes (never plain text) and a role each.

`<home>/portal_users.yml`:

    users:
      marketer: {role: marketer, password_hash: "scrypt$16384$8$1$<salt hex>$<hash hex>"}

Roles: `marketer` (read-only) and `admin` (may also trigger reruns).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml

from personalization.config import Settings
from personalization.exceptions import ConfigError
from personalization.observability import log_event

logger = logging.getLogger(__name__)

ROLES = ("marketer", "admin")
USERS_FILE = "portal_users.yml"
DEMO_LOGIN_FILE = "portal_demo_login.txt"
DEMO_USER = "marketer"
# scrypt cost: ~16 MB and a few tens of ms per check; slows guessing without hurting a login.
_N, _R, _P = 2**14, 8, 1
_NAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,64}$")


@dataclass(frozen=True)
class User:
    """A signed-in portal user."""

    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def users_path(settings: Settings) -> Path:
    return settings.home / USERS_FILE


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$hash` with a fresh 16-byte salt."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of `password` against a `hash_password` string."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n),
                                r=int(r), p=int(p), dklen=len(expected) // 2)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest.hex(), expected)


# Checked when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = hash_password("not-a-password", salt=b"\0" * 16)


def load_users(settings: Settings) -> dict[str, dict]:
    """`{name: {role, password_hash}}` from the users file (empty when there is none)."""
    path = users_path(settings)
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"portal users file {path} is not valid YAML: {e}") from e
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, dict):
        raise ConfigError(f"portal users file {path} must hold a `users:` mapping")
    return {str(k): v for k, v in users.items() if isinstance(v, dict)}


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (created 0600, then atomically renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def add_user(settings: Settings, name: str, password: str, role: str = "marketer") -> User:
    """Create or update a portal user (the password is stored as a salted scrypt hash).

    Args:
        settings: product settings (the file lives at `<home>/portal_users.yml`).
        name: login name (letters, digits, `_ . @ + -`).
        password: the plain password; at least 8 characters.
        role: `marketer` (read-only) or `admin`.

    Returns:
        The user.
    """
    if role not in ROLES:
        raise ConfigError(f"unknown portal role {role!r}; known: {list(ROLES)}")
    if not _NAME.match(name):
        raise ConfigError("portal user names are 1-64 letters, digits or _ . @ + -")
    if len(password) < 8:
        raise ConfigError("portal passwords need at least 8 characters")
    users = load_users(settings)
    users[name] = {"role": role, "password_hash": hash_password(password)}
    _write_private(users_path(settings), yaml.safe_dump({"users": users}, sort_keys=True))
    log_event(logger, "portal_user_saved", role=role, users=len(users))
    return User(name=name, role=role)


def authenticate(settings: Settings, name: str, password: str) -> User | None:
    """The user if `password` is right, else None (same cost for unknown names)."""
    entry = load_users(settings).get(name)
    if entry is None:
        verify_password(password, _DUMMY_HASH)
        return None
    if not verify_password(password, str(entry.get("password_hash", ""))):
        return None
    role = entry.get("role")
    return User(name=name, role=role if role in ROLES else "marketer")


def role_of(settings: Settings, name: str) -> str:
    """Role of a user named by the SSO proxy: from the users file, else read-only."""
    entry = load_users(settings).get(name) or {}
    return entry.get("role") if entry.get("role") in ROLES else "marketer"


def demo_login(settings: Settings) -> tuple[str, str]:
    """The demo user `marketer` and its password, created once with a random password.

    The password is kept in `<home>/portal_demo_login.txt` (mode 0600) so `make demo` can
    print it again; a later call returns the same login as long as it still works.
    """
    path = settings.home / DEMO_LOGIN_FILE
    if path.exists():
        try:
            saved = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError:
            saved = {}
        user, password = str(saved.get("user", "")), str(saved.get("password", ""))
        if user and password and authenticate(settings, user, password):
            return user, password
    password = secrets.token_urlsafe(12)
    add_user(settings, DEMO_USER, password, role="marketer")
    _write_private(path, yaml.safe_dump({"user": DEMO_USER, "password": password}))
    return DEMO_USER, password

"""Server-side login state: active sessions and recent failed logins (SQLite, stdlib).

The session cookie is signed but would be valid until it expires; the cookie only carries
a random session id, and a session counts only while its id is in this store, so signing
out (or removing a user) ends it for every copy of the cookie. Ids and throttle keys are
stored as sha256 hashes: the file gives nobody a usable cookie or a user name.
Shared by every worker process and kept across restarts (`<home>/portal_sessions.sqlite`).
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from contextlib import closing
from pathlib import Path

SESSIONS_FILE = "portal_sessions.sqlite"


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class SessionStore:
    """Active sessions (absolute lifetime `max_age_s`) and failed logins (kept `window_s`)."""

    def __init__(self, path: Path, max_age_s: int, window_s: int):
        self.path, self.max_age_s, self.window_s = path, max_age_s, window_s
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as con, con:
            con.execute("CREATE TABLE IF NOT EXISTS sessions (sid_hash TEXT PRIMARY KEY,"
                        " user_name TEXT NOT NULL, created_at REAL NOT NULL)")
            con.execute("CREATE TABLE IF NOT EXISTS login_failures (key_hash TEXT NOT NULL,"
                        " failed_at REAL NOT NULL)")
            con.execute("CREATE INDEX IF NOT EXISTS login_failures_key"
                        " ON login_failures (key_hash, failed_at)")
        path.chmod(0o600)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def start(self, user_name: str) -> str:
        """A new session for `user_name`; returns its id (for the cookie only)."""
        sid = secrets.token_urlsafe(32)
        with closing(self._connect()) as con, con:
            self._prune(con)
            con.execute("INSERT INTO sessions VALUES (?, ?, ?)", (_hash(sid), user_name, time.time()))
        return sid

    def user_of(self, sid: str | None) -> str | None:
        """The user of a live session, else None (ended, expired or never existed)."""
        if not sid:
            return None
        with closing(self._connect()) as con:
            row = con.execute("SELECT user_name FROM sessions WHERE sid_hash = ? AND created_at > ?",
                              (_hash(sid), time.time() - self.max_age_s)).fetchone()
        return row[0] if row else None

    def end(self, sid: str | None) -> None:
        if sid:
            with closing(self._connect()) as con, con:
                con.execute("DELETE FROM sessions WHERE sid_hash = ?", (_hash(sid),))

    def failures(self, *keys: str) -> list[int]:
        """Failed logins within the window, per key."""
        since = time.time() - self.window_s
        with closing(self._connect()) as con:
            return [con.execute("SELECT count(*) FROM login_failures WHERE key_hash = ?"
                                " AND failed_at > ?", (_hash(k), since)).fetchone()[0]
                    for k in keys]

    def record_failure(self, *keys: str) -> None:
        now = time.time()
        with closing(self._connect()) as con, con:
            self._prune(con)
            con.executemany("INSERT INTO login_failures VALUES (?, ?)", [(_hash(k), now) for k in keys])

    def clear_failures(self, key: str) -> None:
        with closing(self._connect()) as con, con:
            con.execute("DELETE FROM login_failures WHERE key_hash = ?", (_hash(key),))

    def counts(self) -> tuple[int, int]:
        """(sessions, failure records) stored: for tests and the operations runbook."""
        with closing(self._connect()) as con:
            return (con.execute("SELECT count(*) FROM sessions").fetchone()[0],
                    con.execute("SELECT count(*) FROM login_failures").fetchone()[0])

    def _prune(self, con: sqlite3.Connection) -> None:
        # Runs on every write: the store never grows past the live sessions and the window.
        now = time.time()
        con.execute("DELETE FROM sessions WHERE created_at <= ?", (now - self.max_age_s,))
        con.execute("DELETE FROM login_failures WHERE failed_at <= ?", (now - self.window_s,))

"""Test helpers: fast settings, env wiring of a fake to its adapter, ESP state read-back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from personalization.config import load_settings

from .klaviyo import FakeKlaviyo
from .mailchimp import FakeMailchimp
from .sendgrid import FakeSendGrid

FAKES = {"mailchimp": FakeMailchimp, "sendgrid": FakeSendGrid, "klaviyo": FakeKlaviyo}


def fast_settings(home: Path, **overrides):
    """Settings with a tiny, seeded backoff and short timeouts, so fault tests stay quick."""
    values = dict(home=home, esp_backoff_base_seconds=0.01, esp_backoff_max_seconds=2.0,
                  esp_poll_interval_seconds=0.005, esp_retry_seed=7, esp_timeout_seconds=1.0,
                  esp_max_retries=4)
    values.update(overrides)
    return load_settings(**values)


def wire(monkeypatch, esp: str, fake) -> None:
    """Point the adapter for `esp` at `fake` through the documented env vars."""
    prefix = f"PERSONALIZATION_{esp.upper()}_"
    monkeypatch.setenv(prefix + "API_KEY", fake.api_key)
    monkeypatch.setenv(prefix + "BASE_URL", fake.url)
    if esp == "mailchimp":
        monkeypatch.setenv(prefix + "LIST_ID", fake.list_id)


def members(fake, segment: str) -> set[str]:
    """Emails in `segment` at the fake ESP."""
    if isinstance(fake, FakeMailchimp):
        return fake.segment_emails(segment)
    return fake.list_emails(segment)


def sync_log(home: Path, sql: str) -> list[tuple]:
    """Run `sql` against the sync log database (read-only)."""
    con = duckdb.connect(str(home / "esp_sync.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def start_sync_process(esp: str, settings, ds) -> subprocess.Popen:
    """Run `sync(ds, esp)` in a separate Python process (to be killed part-way by a test).

    The process gets the test's environment (credentials wired by `wire`) and the same
    settings; it talks to the fake over HTTP like any client.
    """
    fields = ("home", "esp_backoff_base_seconds", "esp_backoff_max_seconds",
              "esp_poll_interval_seconds", "esp_retry_seed", "esp_timeout_seconds",
              "esp_max_retries", "esp_record_retries")
    values = {f: (str(getattr(settings, f)) if f == "home" else getattr(settings, f))
              for f in fields}
    code = ("import json, sys; from datetime import date; "
            "from personalization.config import load_settings; "
            "from personalization.esp import sync; "
            "sync(date.fromisoformat(sys.argv[2]), sys.argv[1], "
            "load_settings(**json.loads(sys.argv[3])))")
    return subprocess.Popen([sys.executable, "-c", code, esp, ds.isoformat(),
                             json.dumps(values)], env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_after_writes(proc: subprocess.Popen, fake, writes: int, timeout: float = 60) -> bool:
    """SIGKILL `proc` once the fake has applied `writes` write requests; False if it ended
    first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if fake.write_calls >= writes:
            proc.kill()
            proc.wait()
            return True
        time.sleep(0.002)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    return False

"""Test helpers: fast settings, env wiring of a fake to its adapter, ESP state read-back."""

from __future__ import annotations

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

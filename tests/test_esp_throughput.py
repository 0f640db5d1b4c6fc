"""Sync throughput against the fake servers (20,000 contacts per adapter, with faults).

Prints contacts/second; asserts only a generous floor, since the machine is shared. The
adapters stay within each API's published limits (batch sizes, 10 connections for
Mailchimp, Klaviyo's burst limits), which the fakes enforce.
"""

from __future__ import annotations

import time
from datetime import date

import pytest
from fake_esp.exports import contact, write_export
from fake_esp.harness import FAKES, fast_settings, members, wire

from personalization.esp import sync

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

N = 20_000
UPSERT = {"mailchimp": r"^/3\.0/batches$", "sendgrid": r"^/v3/marketing/contacts$",
          "klaviyo": r"^/api/profile-bulk-import-jobs$"}


@pytest.mark.parametrize("name", sorted(FAKES))
def test_throughput_20k_contacts_with_faults(name, tmp_path, monkeypatch, capsys):
    s = fast_settings(tmp_path, esp_timeout_seconds=30.0)
    rows = [contact(i) for i in range(N)]
    write_export(s.exports_dir, date(2026, 10, 1), {"vip": rows})
    with FAKES[name]() as fake:
        wire(monkeypatch, name, fake)
        fake.add_fault("status", path=UPSERT[name], status=503, skip=1)
        fake.add_fault("reset", path=UPSERT[name], skip=1)
        fake.reject([f"person{i}@example.com" for i in range(0, N, 1000)], times=1)
        start = time.perf_counter()
        report = sync(None, name, s)
        seconds = time.perf_counter() - start
        assert report.rows_out == 2 * N and report.status == "ok"  # contact write + join
        assert len(members(fake, "vip")) == N and max(fake.creates.values()) == 1
    with capsys.disabled():
        print(f"\n{name}: {N} contacts in {seconds:.1f} s = {N / seconds:,.0f} contacts/s "
              f"({report.details['http_calls']} HTTP calls, "
              f"{report.details['http_retries']} retries)")
    assert N / seconds > 200

"""Sync throughput against the fake ESP servers (20,000 contacts per adapter, with faults).

    python benchmarks/esp_throughput.py [--contacts 20000]

Prints contacts/second per adapter. Moved out of the test suite: a speed figure on a shared
machine is a measurement, not a pass/fail check (tests/test_esp_faults.py checks the
behaviour under the same faults on small exports). The adapters stay within each API's
published limits (batch sizes, 10 connections for Mailchimp, Klaviyo's burst limits), which
the fakes enforce.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import pytest  # noqa: E402  (MonkeyPatch, which the fake harness's `wire` expects)
from fake_esp.exports import contact, write_export  # noqa: E402
from fake_esp.harness import FAKES, fast_settings, members, wire  # noqa: E402

from personalization.esp import sync  # noqa: E402

UPSERT = {"mailchimp": r"^/3\.0/batches$", "sendgrid": r"^/v3/marketing/contacts$",
          "klaviyo": r"^/api/profile-bulk-import-jobs$"}


def run(name: str, n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as monkeypatch:
        s = fast_settings(Path(tmp), esp_timeout_seconds=30.0)
        write_export(s.exports_dir, date(2026, 10, 1), {"vip": [contact(i) for i in range(n)]})
        with FAKES[name]() as fake:
            wire(monkeypatch, name, fake)
            fake.add_fault("status", path=UPSERT[name], status=503, skip=1)
            fake.add_fault("reset", path=UPSERT[name], skip=1)
            fake.reject([f"person{i}@example.com" for i in range(0, n, 1000)], times=1)
            start = time.perf_counter()
            report = sync(None, name, s)
            seconds = time.perf_counter() - start
            ok = (report.rows_out == 2 * n and report.status == "ok"
                  and len(members(fake, "vip")) == n and max(fake.creates.values()) == 1)
    print(f"{name}: {n} contacts in {seconds:.1f} s = {n / seconds:,.0f} contacts/s "
          f"({report.details['http_calls']} HTTP calls, {report.details['http_retries']} retries)"
          f"{'' if ok else '  WRONG RESULT'}")
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    args = parser.parse_args()
    for name in sorted(FAKES):
        run(name, args.contacts)


if __name__ == "__main__":
    main()

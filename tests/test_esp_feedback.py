"""The loop back: unsubscribes, bounces and complaints read from each ESP into the lake.

That the next night's export leaves those people out is checked end to end, on real dbt, in
tests/test_e2e.py (test_an_unsubscribe_at_the_esp_stops_the_next_nights_export)."""

from __future__ import annotations

import csv
from datetime import date

import duckdb
import pytest
from fake_esp.exports import contact, write_export
from fake_esp.harness import FAKES, fast_settings, wire

from personalization.esp import sync
from personalization.esp.feedback import delivery_path, pull_suppressions
from personalization.extract import extract_source
from personalization.privacy.emails import email_sha256

pytestmark = pytest.mark.timeout(120)

D1 = date(2026, 10, 1)


def _rows(path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_esp_reports_its_suppressions_hashed_into_the_lake(tmp_path, monkeypatch):
    fakes = {name: FAKES[name]() for name in FAKES}
    for name, fake in fakes.items():
        fake.start()
        wire(monkeypatch, name, fake)
    try:
        s = fast_settings(tmp_path, esp_targets=["file_drop", *sorted(FAKES)])
        write_export(s.exports_dir, D1, {"vip": [contact(i) for i in range(1, 9)]})
        for name in FAKES:
            sync(D1, name, s)
        fakes["mailchimp"].unsubscribe("person1@example.com")
        fakes["mailchimp"].unsubscribe("person2@example.com", status="cleaned")
        fakes["sendgrid"].suppress("person3@example.com", "unsubscribes")
        fakes["sendgrid"].suppress("person4@example.com", "group")
        fakes["sendgrid"].suppress("person5@example.com", "bounces")
        fakes["sendgrid"].suppress("person6@example.com", "spam_reports")
        fakes["klaviyo"].suppress("person7@example.com", "SPAM_COMPLAINT")
        fakes["klaviyo"].suppress("person8@example.com", "HARD_BOUNCE")

        report = pull_suppressions(D1, s)

        path = delivery_path(D1, s)
        text = path.read_text()
        assert "@example.com" not in text  # hashes only
        got = {(r["esp"], r["email_sha256"], r["reason"]) for r in _rows(path)}
        h = email_sha256
        assert got == {
            ("mailchimp", h("person1@example.com"), "unsubscribe"),
            ("mailchimp", h("person2@example.com"), "bounce"),
            ("sendgrid", h("person3@example.com"), "unsubscribe"),
            ("sendgrid", h("person4@example.com"), "unsubscribe"),
            ("sendgrid", h("person5@example.com"), "bounce"),
            ("sendgrid", h("person6@example.com"), "spam_complaint"),
            ("klaviyo", h("person7@example.com"), "spam_complaint"),
            ("klaviyo", h("person8@example.com"), "bounce"),
        }
        assert report.rows_out == 8 and report.details["per_esp"] == {
            "mailchimp": 2, "sendgrid": 4, "klaviyo": 2}

        # The extract loads the delivery like any source: every row in the lake.
        loaded = extract_source("esp", D1, s)
        assert [(r.rows_in, r.rows_out, r.rows_quarantined) for r in loaded] == [(8, 8, 0)]
        lake = s.lake_dir / "raw/esp/suppressions/ds=2026-10-01/part-0.parquet"
        hashes = {r[0] for r in duckdb.sql(f"select email_sha256 from '{lake}'").fetchall()}
        assert hashes == {g[1] for g in got}

        # A rerun of the date reuses the delivery: the night gives the same result.
        fakes["klaviyo"].suppress("person1@example.com")
        assert pull_suppressions(D1, s).status == "skipped"
        assert path.read_text() == text
    finally:
        for fake in fakes.values():
            fake.stop()


def test_no_api_esp_configured_is_an_empty_delivery(tmp_path):
    s = fast_settings(tmp_path)  # esp_targets: file_drop only
    pull_suppressions(D1, s)
    assert delivery_path(D1, s).read_text().strip() == \
        "esp,email_sha256,reason,esp_reason,reported_at"
    [report] = extract_source("esp", D1, s)
    assert (report.rows_in, report.rows_out) == (0, 0)

"""Requests for an address several persons' records carry (a company's info@): it does not
say which of them asked. An erasure request is held for review (no one is erased, the address
leaves every golden record and stays suppressed) until an operator confirms it, then the next
night erases everyone carrying it; an access request names the person or takes all of them
explicitly. Real dbt build on a hand-made lake, the real erase and purge steps, the CLI."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import duckdb
import pytest
from test_warehouse import contact, query, ts, write_lake

from personalization.cli import main
from personalization.config import load_settings
from personalization.observability import warnings_of
from personalization.privacy import erase, purge_erasure_requests
from personalization.privacy.ledger import ledger_path
from personalization.privacy.reviews import held_requests
from personalization.warehouse import build

DAY = date(2026, 3, 30)
ROLE = "info@firm-example.de"
OWN = "eve@own-mail.de"
LAKE = {
    ("crm", "contacts"): [
        contact("c1", ROLE, "Ann", "Lee", "+49 30 1111111", "DE", "2025-01-01T00:00:00", True,
                "2025-01-01T00:00:00", street="Lindenweg 1", city="Bonn", postcode="53111"),
        contact("c2", ROLE, "Bob", "Roe", "+49 30 2222222", "DE", "2025-02-01T00:00:00", True,
                "2025-02-01T00:00:00", street="Ahornallee 9", city="Köln", postcode="50667",
                birth="1975-03-04"),
        contact("c3", OWN, "Eve", "Gone", "+49 30 3333333", "DE", "2025-03-01T00:00:00", True,
                "2025-03-01T00:00:00", street="Birkenstr. 4", city="Essen", postcode="45127",
                birth="1990-07-08"),
    ],
    ("crm", "erasure_requests"): [
        {"email": ROLE, "requested_at": ts("2026-03-29T09:00:00")},
        {"email": OWN, "requested_at": ts("2026-03-29T09:00:00")},
    ],
}


def sha(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()


def lake_contacts(settings) -> set[str]:
    return {r[0] for r in duckdb.sql(f"select contact_id from read_parquet("
                                     f"'{settings.lake_dir}/raw/crm/contacts/*/*.parquet')").fetchall()}


def ledger_emails(settings) -> set[str]:
    return {r[0] for r in duckdb.sql(f"select key_sha256 from read_parquet('{ledger_path(settings)}') "
                                     "where key_kind = 'email'").fetchall()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    settings = load_settings(home=tmp_path_factory.mktemp("shared") / "home", esp_targets=[],
                             dbt_tests=False)
    write_lake(settings.lake_dir, DAY, LAKE)
    build(DAY, "marts", settings)
    return settings


@pytest.fixture()
def home(built, monkeypatch):
    monkeypatch.setenv("PERSONALIZATION_HOME", str(built.home))
    monkeypatch.setenv("PERSONALIZATION_ESP_TARGETS", "[]")
    monkeypatch.setenv("PERSONALIZATION_DBT_TESTS", "false")
    return built


def test_an_access_request_for_a_shared_address_names_the_person_or_takes_all(home, tmp_path, capsys):
    settings = home
    persons = dict(query(settings, "select source_id, unified_id from identity_map where source = 'crm'"))
    out = tmp_path / "sar"
    # Answering for everyone carrying the address would hand Bob's data to whoever reads it.
    assert main(["subject-access", "--email", ROLE, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "records of 2 persons carry this address" in err and "Bob Roe" in err
    assert not out.exists()
    assert main(["subject-access", "--email", ROLE, "--out", str(out),
                 "--person", persons["c3"]]) == 1
    assert "not a person whose records carry this address" in capsys.readouterr().err
    assert main(["subject-access", "--email", ROLE, "--out", str(out), "--person", persons["c1"]]) == 0
    data = json.loads((out / "subject_access.json").read_text())
    assert data["request"]["persons"] == [persons["c1"]]
    assert {r["contact_id"] for r in data["source_records"]} == {"c1"}
    assert main(["subject-access", "--email", ROLE, "--out", str(out), "--all-persons"]) == 0
    data = json.loads((out / "subject_access.json").read_text())
    assert sorted(data["request"]["persons"]) == sorted([persons["c1"], persons["c2"]])
    # A person's own address needs neither.
    assert main(["subject-access", "--email", OWN, "--out", str(out)]) == 0


def test_an_erasure_request_for_a_shared_address_is_held_until_an_operator_confirms_it(home, capsys):
    settings = home
    assert dict(query(settings, "select email_sha256, status from int_customers__erasure_requests")) \
        == {sha(ROLE): "held_for_review", sha(OWN): "erase"}
    profiles = dict(query(settings, """select m.source_id, (p.email, p.is_erased)
        from identity_map m join customer_profiles p using (unified_id) where m.source = 'crm'"""))
    # Neither shows the requested address (a person's other address would win: the unit
    # test golden_record_never_shows_a_requested_address); neither is erased.
    assert profiles == {"c1": (None, False), "c2": (None, False), "c3": (None, True)}

    report = erase(DAY, settings)
    assert report.details["requests_held_for_review"] == 1
    assert report.status == "warning" and "erasure-reviews" in warnings_of(report)[0]
    assert report.details["persons_flagged_in_warehouse"] == 1
    assert lake_contacts(settings) == {"c1", "c2"}
    assert sha(ROLE) not in ledger_emails(settings) and sha(OWN) in ledger_emails(settings)
    # No ESP to wait for: the carried-out request's plain address goes, the held one stays
    # (it is what keeps the address suppressed).
    purge_erasure_requests(DAY, settings)
    requests = duckdb.sql(f"select email from read_parquet('{settings.lake_dir}/raw/crm/"
                          "erasure_requests/*/*.parquet')").fetchall()
    assert requests == [(ROLE,)]

    [held] = held_requests(settings)
    assert (held["email"], held["persons"]) == (ROLE, 2)
    assert main(["erasure-reviews"]) == 0
    assert ROLE in capsys.readouterr().err
    assert main(["erasure-reviews", "--confirm", "someone@else-example.de"]) == 1
    assert "no erasure request held for review" in capsys.readouterr().err
    assert main(["erasure-reviews", "--confirm", " INFO@Firm-Example.de"]) == 0

    # The next run erases everyone carrying the confirmed address.
    build(DAY, "marts", settings)
    assert query(settings, "select status, is_confirmed from int_customers__erasure_requests") \
        == [("erase", True)]
    report = erase(DAY, settings)
    assert report.details["requests_held_for_review"] == 0 and report.status == "ok"
    assert report.details["persons_flagged_in_warehouse"] == 2
    assert lake_contacts(settings) == set()
    assert sha(ROLE) in ledger_emails(settings)
    assert held_requests(settings) == []

"""ESP sync against local fake ESP servers: end state, deltas, mirror, erasure, dry run."""

from __future__ import annotations

import json
import logging
from datetime import date

import pytest
from fake_esp.exports import contact, write_export
from fake_esp.harness import FAKES, fast_settings, members, sync_log, wire

from personalization.esp import sync
from personalization.exceptions import SyncError
from personalization.privacy.emails import email_sha256

pytestmark = pytest.mark.timeout(60)

D1, D2 = date(2026, 10, 1), date(2026, 10, 2)
ESPS = sorted(FAKES)


def _rows(ids, holdout_every=10, **kw):
    return [contact(i, holdout=(i % holdout_every == 0), **kw) for i in ids]


def _expected(rows, erased=()):
    return {r["email"] for r in rows if not r["is_holdout"] and r["email"] not in erased}


@pytest.fixture(params=ESPS)
def esp(request, monkeypatch, tmp_path):
    """(name, running fake, settings) for each API adapter."""
    fake = FAKES[request.param]()
    fake.start()
    wire(monkeypatch, request.param, fake)
    yield request.param, fake, fast_settings(tmp_path)
    fake.stop()


def test_sync_makes_esp_equal_to_export_minus_holdout(esp):
    name, fake, s = esp
    vip, cart = _rows(range(1, 41)), _rows(range(30, 61))
    write_export(s.exports_dir, D1, {"vip": vip, "cart": cart}, erasures=["person35@example.com"])

    report = sync(D1, name, s)

    assert report.status == "ok"
    assert members(fake, "vip") == _expected(vip, {"person35@example.com"})
    assert members(fake, "cart") == _expected(cart, {"person35@example.com"})
    assert not any(e.startswith("person10@") for e in members(fake, "vip"))  # holdout
    # Merge fields arrived (each ESP's own field names) and nobody was created twice.
    fields = fake.fields_of("person1@example.com")
    assert "First1" in fields.values() and "sku-1" in fields.values()
    assert max(fake.creates.values()) == 1
    # The log accounts for every planned record, by hash only.
    planned = report.rows_in
    logged = sync_log(s.home, "select count(*), count(distinct email_sha256) from esp_sync_log "
                              "where kind = 'record' and status = 'ok'")
    assert logged[0][0] == planned == report.rows_out
    # person1 (vip only): one contact write and one join; person33 (vip and cart): one
    # contact write, two joins.
    assert sync_log(s.home, "select count(*) from esp_sync_log where email_sha256 = "
                            f"'{email_sha256('person1@example.com')}'")[0][0] == 2
    assert sync_log(s.home, "select count(*) from esp_sync_log where email_sha256 = "
                            f"'{email_sha256('person33@example.com')}'")[0][0] == 3
    assert fake.upserts["person33@example.com"] == 1  # written once, not once per segment
    assert b"person1@example.com" not in (s.home / "esp_sync.duckdb").read_bytes()
    # A rerun of the same day finds nothing to send.
    writes = fake.write_calls
    again = sync(D1, name, s)
    assert again.rows_in == 0 and fake.write_calls == writes


def test_dry_run_sends_nothing_and_reports_counts(esp):
    name, fake, s = esp
    rows = _rows(range(1, 21))
    write_export(s.exports_dir, D1, {"vip": rows})

    report = sync(None, name, s, dry_run=True)

    assert report.status == "dry_run"
    assert fake.write_calls == 0 and members(fake, "vip") == set()
    assert report.details["plan"]["adds"] == 18 and report.details["plan"]["holdout_skipped"] == 2
    summaries = list((s.home / "esp_sync_runs" / name / D1.isoformat()).glob("*.json"))
    assert json.loads(summaries[0].read_text())["dry_run"] is True


def test_next_day_delta_adds_updates_removes(esp):
    name, fake, s = esp
    day1 = _rows(range(1, 21))
    write_export(s.exports_dir, D1, {"vip": day1})
    sync(D1, name, s)
    # Day 2: 1-5 left, 21-25 joined, person7's recommendation changed.
    day2 = [contact(i, reco="sku-9" if i == 7 else "sku-1") for i in range(6, 26)]
    write_export(s.exports_dir, D2, {"vip": day2},
                 added={"vip": [f"person{i}@example.com" for i in range(21, 26)]},
                 removed={"vip": [f"person{i}@example.com" for i in range(1, 6)]})

    report = sync(D2, name, s)

    plan = report.details["plan"]
    # person10/20 were holdout on day 1 and are exported on day 2: they are adds.
    assert (plan["adds"], plan["contact_adds"], plan["removes"]) == (7, 7, 5)
    assert plan["contact_updates"] == 1
    assert members(fake, "vip") == {r["email"] for r in day2}
    assert "sku-9" in fake.fields_of("person7@example.com").values()


def test_mirror_removes_members_not_in_export(esp):
    name, fake, s = esp
    write_export(s.exports_dir, D1, {"vip": _rows(range(1, 31))})
    sync(D1, name, s)
    # Day 2's deltas forgot to say 21-30 left: delta mode keeps them, mirror removes them.
    day2 = _rows(range(1, 21))
    write_export(s.exports_dir, D2, {"vip": day2}, added={"vip": []})
    assert sync(D2, name, s).rows_in == 0
    assert len(members(fake, "vip")) == 27

    report = sync(D2, name, s, mode="mirror")

    assert report.details["plan"]["removes"] == 9  # 21..30 minus the holdout person30
    assert members(fake, "vip") == _expected(day2)


def test_erasure_deletes_the_person_at_the_esp(esp):
    name, fake, s = esp
    write_export(s.exports_dir, D1, {"vip": _rows(range(1, 11))})
    sync(D1, name, s)
    assert "person7@example.com" in members(fake, "vip")
    write_export(s.exports_dir, D2, {"vip": _rows([1, 2, 3])},
                 removed={"vip": [f"person{i}@example.com" for i in range(4, 11)]},
                 erasures=["person7@example.com"])

    report = sync(D2, name, s)

    assert report.details["plan"]["erasures"] == 1
    everyone = {"mailchimp": lambda: {m["email_address"] for m in fake.members.values()},
                "sendgrid": lambda: set(fake.contacts),
                "klaviyo": lambda: set(fake.profiles)}[name]()
    assert "person7@example.com" not in everyone and "person8@example.com" in everyone
    deleted = sync_log(s.home, "select count(*) from esp_sync_log where action = 'delete' "
                               "and status = 'ok'")
    assert deleted == [(1,)]
    # Propagated once: the next run does not ask again.
    assert sync(D2, name, s).details["plan"]["erasures"] == 0


def test_missing_credentials_is_one_clear_line(tmp_path, monkeypatch):
    from personalization.esp import credentials

    monkeypatch.delenv("PERSONALIZATION_SENDGRID_API_KEY", raising=False)
    monkeypatch.setattr(credentials, "_airflow_connection", lambda conn_id: None)
    s = fast_settings(tmp_path)
    write_export(s.exports_dir, D1, {"vip": _rows(range(1, 3))})
    with pytest.raises(SyncError) as e:
        sync(D1, "sendgrid", s)
    assert "PERSONALIZATION_SENDGRID_API_KEY" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(SyncError, match="unknown ESP"):
        sync(D1, "constant_contact", s)


def test_credentials_from_airflow_connection(tmp_path, monkeypatch):
    fake = FAKES["klaviyo"]()
    with fake:
        monkeypatch.delenv("PERSONALIZATION_KLAVIYO_API_KEY", raising=False)
        monkeypatch.setenv("AIRFLOW_CONN_PERSONALIZATION_KLAVIYO", json.dumps(
            {"conn_type": "http", "password": fake.api_key, "extra": {"base_url": fake.url}}))
        s = fast_settings(tmp_path)
        write_export(s.exports_dir, D1, {"vip": _rows(range(1, 6))})
        assert sync(D1, "klaviyo", s).rows_out == 10  # 5 contact writes, 5 joins
        assert len(fake.list_emails("vip")) == 5


def test_api_key_never_in_logs_log_db_or_summary(esp, caplog):
    name, fake, s = esp
    write_export(s.exports_dir, D1, {"vip": _rows(range(1, 21))})
    fake.add_fault("status", status=503)  # a retry produces warning lines too
    caplog.set_level(logging.DEBUG)

    sync(D1, name, s)

    assert "esp_http_retry" in caplog.text
    assert fake.api_key not in caplog.text
    assert fake.api_key.encode() not in (s.home / "esp_sync.duckdb").read_bytes()
    for path in (s.home / "esp_sync_runs").rglob("*.json"):
        assert fake.api_key not in path.read_text()


def test_file_drop_writes_csvs_without_holdout_idempotently(tmp_path):
    s = fast_settings(tmp_path)
    rows = _rows(range(1, 21))
    write_export(s.exports_dir, D1, {"vip": rows}, removed={"vip": ["gone@example.com"]},
                 erasures=["erased@example.com"])

    report = sync(D1, "file_drop", s)

    drop = s.home / "esp_drop" / D1.isoformat()
    listed = (drop / "segments" / "vip.csv").read_text()
    assert "person1@example.com" in listed and "person10@example.com" not in listed
    assert "is_holdout" not in listed.splitlines()[0]
    assert "person10@" not in (drop / "deltas" / "vip.added.csv").read_text()
    assert "gone@example.com" in (drop / "deltas" / "vip.removed.csv").read_text()
    assert "erased@example.com" in (drop / "erasures.csv").read_text()
    manifest = json.loads((drop / "manifest.json").read_text())
    assert manifest["files"]["segments/vip.csv"]["rows"] == 18
    assert report.status == "ok"
    sync(D1, "file_drop", s)
    assert json.loads((drop / "manifest.json").read_text())["files"] == manifest["files"]
    assert not list((s.home / "esp_drop").glob(".tmp-*"))


def test_mailchimp_sync_never_resubscribes_anyone(tmp_path, monkeypatch):
    """A member who unsubscribed (or bounced) at Mailchimp keeps that status whatever we send."""
    fake = FAKES["mailchimp"]()
    with fake:
        wire(monkeypatch, "mailchimp", fake)
        s = fast_settings(tmp_path)
        rows = _rows(range(1, 11))
        write_export(s.exports_dir, D1, {"vip": rows})
        sync(D1, "mailchimp", s)
        fake.unsubscribe("person1@example.com")
        fake.unsubscribe("person2@example.com", status="cleaned")
        # The warehouse has not heard of it yet: tomorrow's export still holds both, changed.
        write_export(s.exports_dir, D2, {"vip": _rows(range(1, 11), reco="sku-7")},
                     added={"vip": []})

        report = sync(D2, "mailchimp", s)

        assert fake.status_change_attempts == []
        assert fake.status_of("person1@example.com") == "unsubscribed"
        assert fake.status_of("person2@example.com") == "cleaned"
        assert fake.status_of("person3@example.com") == "subscribed"  # new: status_if_new
        assert report.status == "ok" and report.rows_quarantined == 0
        assert "sku-7" in fake.fields_of("person1@example.com").values()


# --- field mapping --------------------------------------------------------------------

def test_sendgrid_reserved_fields_are_written_as_such_not_created(tmp_path, monkeypatch):
    """COUNTRY is a SendGrid reserved field: creating it as a custom field is refused (400)."""
    fake = FAKES["sendgrid"]()
    with fake:
        wire(monkeypatch, "sendgrid", fake)
        s = fast_settings(tmp_path)
        rows = [contact(i) | {"COUNTRY": "DE", "POSTCODE": "10115"} for i in range(1, 6)]
        write_export(s.exports_dir, D1, {"vip": rows}, contact_columns=["COUNTRY", "POSTCODE"])

        report = sync(D1, "sendgrid", s)

        assert report.status == "ok"
        held = fake.fields_of("person1@example.com")
        assert (held["country"], held["postal_code"], held["first_name"]) == ("DE", "10115",
                                                                             "First1")
        assert not {"COUNTRY", "POSTCODE", "FNAME"} & {n.upper() for n in fake.field_names()}
        assert report.details["plan"]["fields"]["COUNTRY"] == "country"


@pytest.mark.parametrize(("name", "columns", "field"), [
    ("mailchimp", ["LAST_ORDER_DATE", "LAST_ORDER_AT"], "LAST_ORDER"),  # 10-character tags
    ("sendgrid", ["POSTCODE", "POSTAL_CODE"], "postal_code"),  # alias and reserved name
])
def test_colliding_fields_are_refused_at_dry_run_with_one_line(name, columns, field,
                                                               tmp_path, monkeypatch):
    fake = FAKES[name]()
    with fake:
        wire(monkeypatch, name, fake)
        s = fast_settings(tmp_path)
        rows = [contact(i) | {c: f"{c}-{i}" for c in columns} for i in range(1, 4)]
        write_export(s.exports_dir, D1, {"vip": rows}, contact_columns=columns)

        with pytest.raises(SyncError) as e:
            sync(D1, name, s, dry_run=True)

        message = str(e.value)
        assert "\n" not in message and all(c in message for c in columns)
        assert repr(field) in message and f"esp_field_names.{name}." in message
        assert fake.write_calls == 0
        # The override the message names resolves it.
        s2 = fast_settings(tmp_path, esp_field_names={name: {columns[1]: "ORDER_AT2"}})
        assert sync(D1, name, s2).status == "ok"
        assert fake.fields_of("person1@example.com")["ORDER_AT2"] == f"{columns[1]}-1"


def test_segment_columns_never_clobber_contact_fields(tmp_path, monkeypatch):
    """A person in two segments gets each segment's own value under a prefixed name (or, at
    Mailchimp, not at all) and one set of contact-level values."""
    for name in ESPS:
        fake = FAKES[name]()
        with fake:
            wire(monkeypatch, name, fake)
            s = fast_settings(tmp_path / name)
            seg = {"recent": [contact(i) | {"PRODUCT_VIEW_COUNT": str(i)} for i in (1, 2)],
                   "intent": [contact(i) | {"PRODUCT_VIEW_COUNT": str(10 * i)} for i in (1, 3)]}
            write_export(s.exports_dir, D1, seg,
                         extra_columns={k: ["PRODUCT_VIEW_COUNT"] for k in seg})

            report = sync(D1, name, s)

            held = fake.fields_of("person1@example.com")
            if name == "mailchimp":
                assert report.details["plan"]["dropped_columns"] == ["PRODUCT_VIEW_COUNT"]
                assert not any(k.startswith("PRODUCT_") for k in held)
            else:
                assert held["RECENT__PRODUCT_VIEW_COUNT"] == "1"
                assert held["INTENT__PRODUCT_VIEW_COUNT"] == "10"
                assert "PRODUCT_VIEW_COUNT" not in held
            assert fake.upserts["person1@example.com"] == 1


# --- batching -------------------------------------------------------------------------

def test_pack_fits_records_and_decimal_bytes_exactly():
    from personalization.esp.batching import JsonEnvelope, pack

    envelope = JsonEnvelope({"list_ids": ["L1"], "contacts": JsonEnvelope.ROWS})
    rows = ['{"email": "a"}', '{"email": "bb"}', '{"email": "ccc"}', "x" * 100]
    fixed = len('{"list_ids": ["L1"], "contacts": []}')
    assert envelope.fixed_bytes() == fixed
    assert envelope.body(rows[:2]) == '{"list_ids": ["L1"], "contacts": [{"email": "a"}, ' \
                                      '{"email": "bb"}]}'
    # Room for exactly the first two rows (14 + 2 + 15 bytes): the third starts a new body.
    parts, too_big = pack(rows, envelope, max_records=10, max_bytes=fixed + 31)
    assert parts == [range(0, 2), range(2, 3)] and too_big == [3]
    assert all(len(envelope.body([rows[i] for i in p])) <= fixed + 31 for p in parts)
    parts, _ = pack(rows[:3], envelope, max_records=1, max_bytes=10_000)
    assert parts == [range(0, 1), range(1, 2), range(2, 3)]


@pytest.mark.parametrize("name", ["sendgrid", "klaviyo"])
def test_batches_just_over_the_decimal_limit_are_split_not_refused(name, tmp_path,
                                                                   monkeypatch):
    """Klaviyo's 5 MB is 5,000,000 bytes, SendGrid's 6 MB 6,000,000: a batch between the
    decimal and the binary megabytes (the old bug) must be split, never sent and refused."""
    fake = FAKES[name]()
    with fake:
        wire(monkeypatch, name, fake)
        s = fast_settings(tmp_path)
        limit = {"sendgrid": 6_000_000, "klaviyo": 5_000_000}[name]
        n = 1_000
        filler = "x" * (limit // n + 100)  # n rows total just over the decimal limit
        rows = [contact(i) | {"NOTE": filler} for i in range(n)]
        write_export(s.exports_dir, D1, {"vip": rows}, contact_columns=["NOTE"])

        report = sync(D1, name, s)

        assert report.status == "ok" and len(members(fake, "vip")) == n
        statuses = [c[2] for c in fake.calls]
        assert 413 not in statuses
        # Accepted requests only: on a loaded machine a batch may time out once and be retried.
        upserts = sync_log(s.home, "select count(*) from esp_sync_log where kind = 'http' and "
                                   "endpoint in ('PUT /v3/marketing/contacts', "
                                   "'POST /api/profile-bulk-import-jobs') and http_status between 200 and 299")
        assert upserts == [(2,)]  # one request would have been over the limit


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_reading_emails_only_gives_the_contacts_emails_in_order_and_the_same_holdout(tmp_path,
                                                                                      fmt):
    from personalization.esp.reader import read_export

    s = fast_settings(tmp_path)
    rows = _rows([7, 3, 12, 20, 5])  # file order is not email order; 20 is holdout
    rows[1] = {**rows[1], "email": "\t Person3@Example.com \n"}  # normalised like the row loop
    rows.append({**contact(8), "email": " "})  # blank: skipped by both
    rows.append({**contact(9), "is_holdout": None})  # no flag: a contact, not holdout
    write_export(s.exports_dir, D1, {"vip": rows}, fmt=fmt)

    full = read_export(D1, s).segments["vip"]
    light = read_export(D1, s, contacts=False).segments["vip"]

    assert light.emails == [c.email for c in full.contacts] == [
        "person7@example.com", "person3@example.com", "person12@example.com",
        "person5@example.com", "person9@example.com"]
    assert light.holdout_emails == full.holdout_emails == {"person20@example.com"}
    assert light.contacts == [] and light.added_emails == full.added_emails

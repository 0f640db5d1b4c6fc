"""ESP sync under injected faults: 429, 5xx, timeouts, resets after apply, per-record
rejections, crashes, a killed process, and the standard fault profile on every endpoint.

After every fault the ESP must equal the export (minus holdout), nobody is created twice,
no list or field exists twice, nobody is resubscribed, and the sync log accounts for every
record.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import date

import pytest
from fake_esp.exports import contact, write_export
from fake_esp.harness import (
    FAKES,
    fast_settings,
    kill_after_writes,
    members,
    start_sync_process,
    sync_log,
    wire,
)

from personalization.esp import creates as esp_creates
from personalization.esp import http as esp_http
from personalization.esp import sync
from personalization.exceptions import SyncError
from personalization.privacy.emails import email_sha256

pytestmark = pytest.mark.timeout(120)

D1 = date(2026, 10, 1)
# The upsert endpoint of each ESP, where faults hurt most.
UPSERT = {"mailchimp": ("POST", r"^/3\.0/batches$"),
          "sendgrid": ("PUT", r"^/v3/marketing/contacts$"),
          "klaviyo": ("POST", r"^/api/profile-bulk-import-jobs$")}
BATCH_CLASS = {"mailchimp": "personalization.esp.mailchimp.MailchimpAdapter",
               "sendgrid": "personalization.esp.sendgrid.SendGridAdapter",
               "klaviyo": "personalization.esp.klaviyo.KlaviyoAdapter"}


@pytest.fixture(params=sorted(FAKES))
def esp(request, monkeypatch, tmp_path):
    fake = FAKES[request.param]()
    fake.start()
    wire(monkeypatch, request.param, fake)
    # Small batches so a 60-contact export spans several requests.
    monkeypatch.setattr(BATCH_CLASS[request.param] + ".upsert_batch_size", 15)
    s = fast_settings(tmp_path)
    vip = [contact(i, holdout=(i % 10 == 0)) for i in range(1, 61)]
    write_export(s.exports_dir, D1, {"vip": vip})
    expected = {r["email"] for r in vip if not r["is_holdout"]}
    yield request.param, fake, s, expected
    fake.stop()


def _ok_records(home) -> set[tuple[str, str]]:
    """(list_name, email_sha256) of every record the log holds as done."""
    return set(sync_log(home, "select list_name, email_sha256 from esp_sync_log "
                              "where kind = 'record' and status = 'ok'"))


def _assert_clean(fake, s, expected, report):
    assert members(fake, "vip") == expected
    assert set(fake.creates) == expected and max(fake.creates.values()) == 1
    # One contact write and one join per person, each logged as done.
    hashes = {email_sha256(e) for e in expected}
    assert _ok_records(s.home) == {(lst, h) for h in hashes for lst in ("@contact", "vip")}
    assert report.rows_out == 2 * len(expected)


def test_transient_http_faults_are_retried(esp, monkeypatch):
    name, fake, s, expected = esp
    method, path = UPSERT[name]
    fake.add_fault("status", method=method, path=path, status=503, times=2)
    fake.add_fault("status", method=method, path=path, status=500, skip=1)
    fake.add_fault("status", path=".", status=429, headers=fake.retry_hint(), skip=3)

    waits: list[float] = []

    class RecordingTime:  # the ESP code's `time`, with every sleep it asks for recorded
        def __getattr__(self, name):
            return getattr(time, name)

        def sleep(self, seconds):
            waits.append(seconds)
            time.sleep(seconds)

    for module in (esp_http, esp_creates):
        monkeypatch.setattr(module, "time", RecordingTime())
    report = sync(D1, name, s)

    _assert_clean(fake, s, expected, report)
    statuses = {r[0] for r in sync_log(s.home, "select http_status from esp_sync_log "
                                               "where kind = 'http'")}
    assert {429, 500, 503} <= statuses
    if name != "sendgrid":  # Retry-After: 1 was honoured (the backoff base is 0.01 s)
        assert max(waits) >= 1.0  # the wait it made, not the wall clock of a shared machine
    assert report.details["http_retries"] >= 3


def test_reset_after_apply_and_timeouts_do_not_duplicate(esp):
    name, fake, s, expected = esp
    method, path = UPSERT[name]
    # The server applies the batch, then drops the connection / answers too late.
    fake.add_fault("reset", method=method, path=path, skip=1)
    fake.add_fault("slow", method=method, path=path, delay=1.5, skip=2)

    report = sync(D1, name, s)

    _assert_clean(fake, s, expected, report)
    # Only the two faulted requests (15 contacts each) were replayed, as upserts, never as
    # creates.
    replays = sum(v - 1 for v in fake.upserts.values())
    assert 15 <= replays <= 2 * 15
    errors = {r[0] for r in sync_log(s.home, "select error from esp_sync_log where kind = 'http' "
                                             "and error is not null")}
    assert errors & {"RemoteProtocolError", "ReadError"} and "ReadTimeout" in errors


def test_rejected_records_retried_with_backoff_then_recorded_failed(esp):
    name, fake, s, expected = esp
    fake.reject(["person1@example.com"], times=2)  # transient: heals on the 3rd try
    fake.reject(["person2@example.com"], times=3)  # heals on the last of 1 + 3 tries
    fake.reject(["person3@example.com"], times=-1)  # always rejected

    report = sync(D1, name, s)

    # person3's contact write and its join are both recorded failed, nothing else.
    assert report.status == "partial" and report.rows_quarantined == 2
    assert members(fake, "vip") == expected - {"person3@example.com"}
    assert fake.rejections["person3@example.com"] == -1
    failed = sync_log(s.home, "select list_name, email_sha256, error from esp_sync_log "
                              "where kind = 'record' and status = 'failed'")
    assert {(r[0], r[1]) for r in failed} == {("@contact", email_sha256("person3@example.com")),
                                              ("vip", email_sha256("person3@example.com"))}
    assert all("person3@example.com" not in (r[2] or "") for r in failed)  # hashed only
    # Failed records are not in the state: the next run tries them again.
    fake.rejections.clear()
    again = sync(D1, name, s)
    assert again.rows_in == 2 and again.status == "ok"
    assert members(fake, "vip") == expected


def test_crash_mid_sync_resumes_without_resending(esp):
    name, fake, s, expected = esp
    method, path = UPSERT[name]
    fake.add_fault("status", method=method, path=path, status=500, skip=1, times=100)
    s_once = fast_settings(s.home, esp_max_retries=1)

    with pytest.raises(SyncError, match="failed after 2 attempts"):
        sync(D1, name, s_once)
    sent_first = set(fake.upserts)
    assert 0 < len(sent_first) < len(expected)
    logged_ok = len(_ok_records(s.home))

    fake.faults.clear()
    report = sync(D1, name, s)

    assert report.rows_in == 2 * len(expected) - logged_ok  # logged work is not redone
    assert members(fake, "vip") == expected
    # At most the batch in flight at the crash is sent again (an idempotent upsert).
    assert sum(v - 1 for v in fake.upserts.values()) <= 15


# --- the standard fault profile, a killed sync, a rerun ---------------------------------

SEGMENTS = {"vip": range(1, 41), "cart": range(25, 61)}
ERASED = "person35@example.com"
UNSUBSCRIBED = "person3@example.com"  # unsubscribed at the ESP before any sync
# A segment's own column: the same name, different values per segment.
OWN = "LAST_VIEWED_AT"


def _segment_rows(segment: str, ids) -> list[dict]:
    day = "2026-09-01" if segment == "vip" else "2026-09-02"
    return [contact(i, holdout=(i % 10 == 0)) | {OWN: f"{day}#{i}"} for i in ids]


def _expected_fields(name: str, i: int) -> dict[str, str]:
    """Hand-written: what the ESP must hold for person i (in vip and cart: 25 <= i <= 40)."""
    row = contact(i)
    std = {k: row[k] for k in ("FNAME", "LNAME", "CITY", "FAV_CATEGORY", "RECO_1", "RECO_2",
                               "RECO_3", "BEST_HOUR", "VIP")}
    own = {f"VIP__{OWN}": f"2026-09-01#{i}", f"CART__{OWN}": f"2026-09-02#{i}"}
    if name == "mailchimp":  # 10-character tags; a segment's own columns are not sent
        return {"FNAME": std["FNAME"], "LNAME": std["LNAME"], "CITY": std["CITY"],
                "FAV_CATEGO": "shoes", "RECO_1": "sku-1", "RECO_2": "sku-2",
                "RECO_3": "sku-3", "BEST_HOUR": std["BEST_HOUR"], "VIP": std["VIP"]}
    renamed = {"first_name": std.pop("FNAME"), "last_name": std.pop("LNAME"),
               "city": std.pop("CITY")}
    return renamed | std | own


def _names(fake, name) -> Counter:
    if name == "mailchimp":
        return Counter(fake.segment_names())
    return Counter(fake.list_names())


@pytest.mark.parametrize("name", sorted(FAKES))
def test_standard_faults_everywhere_and_a_killed_sync_leave_exactly_the_export(
        name, tmp_path, monkeypatch):
    fake = FAKES[name]()
    with fake:
        wire(monkeypatch, name, fake)
        monkeypatch.setattr(BATCH_CLASS[name] + ".upsert_batch_size", 10)
        # Short timeouts, so a "slow" answer is a client timeout; waits capped small.
        s = fast_settings(tmp_path, esp_timeout_seconds=0.4, esp_backoff_max_seconds=0.05,
                          esp_max_retries=6)
        segments = {seg: _segment_rows(seg, ids) for seg, ids in SEGMENTS.items()}
        write_export(s.exports_dir, D1, segments, erasures=[ERASED],
                     extra_columns={seg: [OWN] for seg in SEGMENTS})
        fake.seed_unsubscribed(UNSUBSCRIBED)
        armed = fake.arm_standard_faults(seed=11, delay=0.6)
        assert armed >= 4 * 8  # four faults on each of at least eight endpoints

        proc = start_sync_process(name, s, D1)
        assert kill_after_writes(proc, fake, writes=6), "the sync ended before the kill"
        fake.faults.clear()
        fake.arm_standard_faults(seed=12, delay=0.6)
        report = sync(D1, name, s)

        expected = {seg: {r["email"] for r in rows if not r["is_holdout"]} - {ERASED}
                    for seg, rows in segments.items()}
        # Exactly the export minus holdout (and the erased person), in every segment.
        for seg in SEGMENTS:
            assert members(fake, seg) == expected[seg], seg
        # One list/segment per name; each merge/custom field once.
        assert max(_names(fake, name).values()) == 1
        if name == "sendgrid":
            assert len(set(n.lower() for n in fake.field_names())) == len(fake.field_names())
        # Nobody created twice, nobody resubscribed.
        assert max(fake.creates.values()) == 1
        assert fake.still_unsubscribed(UNSUBSCRIBED)
        if name == "mailchimp":
            assert fake.status_change_attempts == []
        # The same contact-level values for a person in both segments.
        for i in (25, 31, 39):
            held = fake.fields_of(f"person{i}@example.com")
            assert {k: held.get(k) for k in _expected_fields(name, i)} == \
                _expected_fields(name, i), i
        assert f"CART__{OWN}" not in fake.fields_of("person1@example.com")
        # The log accounts for every record: every contact write and join is logged done.
        people = set().union(*expected.values())
        wanted = {("@contact", email_sha256(e)) for e in people} | {
            (seg, email_sha256(e)) for seg in SEGMENTS for e in expected[seg]}
        assert wanted <= _ok_records(s.home)
        assert report.status == "ok" and report.rows_out == report.rows_in
        # The faults did fire: retried calls and replays of lost answers are in the log.
        errors = sync_log(s.home, "select count(*) filter (where http_status = 429), "
                                  "count(*) filter (where error = 'ReadTimeout') "
                                  "from esp_sync_log where kind = 'http'")[0]
        assert errors[0] > 0 and errors[1] > 0

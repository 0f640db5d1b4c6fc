"""ESP sync under injected faults: 429, 5xx, timeouts, resets, per-record rejections, crashes.

After every fault the ESP must equal the export (minus holdout), nobody is created twice,
and the sync log accounts for every record.
"""

from __future__ import annotations

import time
from datetime import date

import pytest
from fake_esp.exports import contact, write_export
from fake_esp.harness import FAKES, fast_settings, members, sync_log, wire

from personalization.esp import sync
from personalization.exceptions import SyncError

pytestmark = pytest.mark.timeout(90)

D1 = date(2026, 10, 1)
# The upsert endpoint of each ESP, where faults hurt most.
UPSERT = {"mailchimp": ("PUT", r"^/3\.0/lists/aud1/members/[0-9a-f]{32}$"),
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


def _assert_clean(name, fake, s, expected, report):
    assert members(fake, "vip") == expected
    assert set(fake.creates) == expected and max(fake.creates.values()) == 1
    ok = sync_log(s.home, "select count(distinct email_sha256) from esp_sync_log "
                          "where kind = 'record' and status = 'ok' and list_name = 'vip'")
    assert ok == [(len(expected),)]
    assert report.rows_out == len(expected)


def test_transient_http_faults_are_retried(esp):
    name, fake, s, expected = esp
    method, path = UPSERT[name]
    fake.add_fault("status", method=method, path=path, status=503, times=2)
    fake.add_fault("status", method=method, path=path, status=500, skip=1)
    retry_after = {"X-RateLimit-Reset": str(int(time.time()) + 1)} if name == "sendgrid" \
        else {"Retry-After": "1"}
    fake.add_fault("status", path=".", status=429, headers=retry_after, skip=3)

    start = time.perf_counter()
    report = sync(D1, name, s)

    _assert_clean(name, fake, s, expected, report)
    statuses = {r[0] for r in sync_log(s.home, "select http_status from esp_sync_log "
                                               "where kind = 'http'")}
    assert {429, 500, 503} <= statuses
    if name != "sendgrid":  # Retry-After: 1 was honoured (the backoff base is 0.01 s)
        assert time.perf_counter() - start >= 1.0
    assert report.details["http_retries"] >= 4


def test_reset_after_apply_and_timeouts_do_not_duplicate(esp):
    name, fake, s, expected = esp
    method, path = UPSERT[name]
    # The server applies the batch, then drops the connection / answers too late.
    fake.add_fault("reset", method=method, path=path, skip=1)
    fake.add_fault("slow", method=method, path=path, delay=1.5, skip=2)

    report = sync(D1, name, s)

    _assert_clean(name, fake, s, expected, report)
    # Only the two faulted requests were replayed, as upserts, never as creates.
    per_request = 1 if name == "mailchimp" else 15  # Mailchimp upserts member by member
    replays = sum(v - 1 for v in fake.upserts.values())
    assert per_request <= replays <= 2 * per_request
    errors = {r[0] for r in sync_log(s.home, "select error from esp_sync_log where kind = 'http' "
                                             "and error is not null")}
    assert errors & {"RemoteProtocolError", "ReadError"} and "ReadTimeout" in errors


def test_rejected_records_retried_once_then_recorded_failed(esp):
    name, fake, s, expected = esp
    fake.reject(["person1@example.com", "person2@example.com"], times=1)  # heals on retry
    fake.reject(["person3@example.com"], times=-1)  # always rejected

    report = sync(D1, name, s)

    assert report.status == "partial" and report.rows_quarantined == 1
    assert members(fake, "vip") == expected - {"person3@example.com"}
    failed = sync_log(s.home, "select email_sha256, error from esp_sync_log "
                              "where kind = 'record' and status = 'failed'")
    assert len(failed) == 1 and "person3@example.com" not in (failed[0][1] or "")
    # Failed records are not in the state: the next run tries them again.
    fake.rejections.clear()
    again = sync(D1, name, s)
    assert again.rows_in == 1 and again.status == "ok"
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
    logged_ok = sync_log(s.home, "select count(*) from esp_sync_log "
                                 "where kind = 'record' and status = 'ok'")[0][0]

    fake.faults.clear()
    report = sync(D1, name, s)

    assert report.rows_in == len(expected) - logged_ok  # what was logged is not planned again
    assert members(fake, "vip") == expected
    # At most the batch in flight at the crash is sent again (an idempotent upsert).
    assert sum(v - 1 for v in fake.upserts.values()) <= 15

"""The event intake: signed requests in, durable day files out, the extract's rules applied."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx
import pytest
from fastapi.testclient import TestClient

from personalization.config import load_settings
from personalization.extract import extract_source
from personalization.extract.contracts import EVENTS
from personalization.extract.jsonl_file import extract_events
from personalization.intake import create_app, day_file, signature
from personalization.intake.store import QUARANTINE_FILE, EventStore
from personalization.intake.validate import check_event

SECRET = b"s3cret"
NOW = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)
DS = NOW.date()


@pytest.fixture
def settings(tmp_path):
    return load_settings(home=tmp_path / "home", intake_secret=SECRET.decode(),
                         intake_source_secrets={"shop_app": "other-secret"},
                         intake_max_body_bytes=5_000, intake_max_events_per_request=3)


@pytest.fixture
def client(settings):
    return TestClient(create_app(settings, clock=lambda: NOW))


def ev(event_id: str, **extra) -> dict:
    return {"event_id": event_id, "occurred_at": "2026-10-15T11:59:00Z", "event_type": "page_view",
            "anonymous_id": "ck1", "url": "https://shop.example/?from=10.1.2.3",
            "user_agent": "Mozilla/5.0", **extra}


def send(client, payload, secret: bytes = SECRET, headers: dict | None = None):
    body = json.dumps(payload).encode()
    return client.post("/events", content=body,
                       headers={"X-Signature": signature(secret, body), **(headers or {})})


def stored(settings) -> list[dict]:
    path = day_file(settings.intake_dir, DS)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_signed_event_is_stored_minimised_and_only_once(settings, client):
    assert send(client, ev("e1")).status_code == 202
    again = send(client, [ev("e1"), ev("e2")])
    assert again.status_code == 202 and again.json() == {"accepted": 2, "written": 1,
                                                         "duplicates": 1}
    rows = stored(settings)
    assert [r["event_id"] for r in rows] == ["e1", "e2"]
    assert "user_agent" not in rows[0] and rows[0]["url"] == "https://shop.example/?from=<ip>"


def test_requests_without_the_right_signature_are_refused(settings, client):
    assert send(client, ev("x1"), secret=b"wrong").status_code == 401
    body = json.dumps(ev("x2")).encode()
    assert client.post("/events", content=body).status_code == 401
    # A per-source secret is chosen by X-Source.
    assert send(client, ev("x3"), secret=b"other-secret",
                headers={"X-Source": "shop_app"}).status_code == 202
    assert send(client, ev("x4"), headers={"X-Source": "shop_app"}).status_code == 401
    assert [r["event_id"] for r in stored(settings)] == ["x3"]


def test_bad_events_get_their_reason_and_go_to_quarantine(settings, client):
    response = send(client, [ev("ok1"), ev("bad1", event_type="teleport"),
                             {"occurred_at": "2026-10-15T11:00:00Z", "event_type": "login"}])
    assert response.status_code == 422
    body = response.json()
    assert body["accepted"] == 1
    assert [(r["index"], r["reason"]) for r in body["rejected"]] == [
        (1, "unknown_value:event_type"), (2, "missing_key:event_id")]
    quarantine = (day_file(settings.intake_dir, DS).parent / QUARANTINE_FILE).read_text()
    assert [json.loads(line)["reason"] for line in quarantine.splitlines()] == [
        "unknown_value:event_type", "missing_key:event_id"]
    assert "Mozilla" not in quarantine  # minimised like the extract's quarantine
    assert [r["event_id"] for r in stored(settings)] == ["ok1"]


def test_bodies_and_batches_over_the_limits_are_refused(client):
    assert send(client, [ev(f"b{i}") for i in range(4)]).status_code == 413  # > 3 events
    big = ev("big", url="https://x/" + "a" * 6_000)
    assert send(client, big).status_code == 413  # > 5,000 bytes
    raw = b"{not json"
    assert client.post("/events", content=raw,
                       headers={"X-Signature": signature(SECRET, raw)}).status_code == 400


def test_the_tail_of_a_write_that_was_never_acknowledged_is_cut(settings):
    path = day_file(settings.intake_dir, DS)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"event_id": "kept"}) + '\n{"event_id": "half-writ')
    EventStore(settings.intake_dir).append(DS, [{"event_id": "next"}], [])
    assert [json.loads(line)["event_id"] for line in path.read_text().splitlines()] == [
        "kept", "next"]


TRICKY = [
    ev("t1"), ev("t2", occurred_at="2026-10-15 11:00:00"), ev("t3", occurred_at="2026-10-15T13:00:00+02:00"),
    ev("t4", occurred_at="2026-10-16T00:20:00Z"), ev("t5", occurred_at="2026-10-16T00:10:00Z"),
    ev("t6", occurred_at="yesterday"), ev("t7", occurred_at="20261015T110000"),
    ev("t8", occurred_at="2026-10-15"), ev("t9", event_type=" Add_To_Cart "),
    ev("t10", email_sha256="abc"), ev("t11", email_sha256="A" * 64), {**ev("t12"), "event_id": "  "},
    ev("t13", occurred_at=None), ev("t14", event_type=None), ev("t15", customer_id=12345),
    ev("t16", occurred_at=1760000000), {"event_id": "t17"}, ev("t18", sku={"nested": 1}),
    ev("t19", occurred_at="2026-02-30T10:00:00Z"), ev("t20", event_type="email_click",
                                                       campaign_id="c1", variant="B"),
]


def _sql_verdicts(tmp_path: Path, events: list[dict]) -> list[str | None]:
    path = tmp_path / "tricky.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    extract_events(con, path, EVENTS, DS, 15, "tricky")
    reasons = dict(con.execute("SELECT line_number, reason FROM q_events").fetchall())
    return [reasons.get(i) for i in range(1, len(events) + 1)]


def test_the_intake_and_the_nightly_extract_judge_every_event_alike(tmp_path):
    python = [check_event(e, DS, 15)[1] for e in TRICKY]
    assert python == _sql_verdicts(tmp_path, TRICKY)
    assert python.count(None) >= 8  # the list holds clean events too


def test_the_nightly_extract_loads_the_intake_day_file(settings, client):
    send(client, [ev("n1"), ev("n2"), ev("n3")])
    reports = {r.step: r for r in extract_source("pixel", DS, settings.model_copy(
        update={"required_sources": ["crm", "shop"]}))}
    report = reports["extract_pixel.intake_events"]
    assert (report.rows_in, report.rows_out, report.rows_quarantined) == (3, 3, 0)
    assert reports["extract_pixel.events"].status == "skipped"  # no pixel file: optional here
    rows = duckdb.sql(f"select event_id from read_parquet('{settings.lake_dir}/raw/pixel/"
                      f"intake_events/*/*.parquet') order by 1").fetchall()
    assert rows == [("n1",), ("n2",), ("n3",)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_intake(home: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PERSONALIZATION_HOME": str(home),
           "PERSONALIZATION_INTAKE_SECRET": SECRET.decode()}
    proc = subprocess.Popen([sys.executable, "-m", "personalization.cli", "intake", "serve",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"intake did not start: {proc.stderr.read().decode()[-2000:]}")


def test_killing_the_intake_mid_stream_loses_and_doubles_nothing(tmp_path):
    """Senders retry until they get a 202 (at-least-once); the day file must then hold every
    acknowledged event exactly once, whatever the kill cut."""
    home, port = tmp_path / "home", _free_port()
    acknowledged: list[str] = []
    stop = threading.Event()

    def sender() -> None:
        batch_no = 0
        with httpx.Client(timeout=2) as http:
            while not stop.is_set():
                now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                batch = [ev(f"k{batch_no}-{i}", occurred_at=now) for i in range(5)]
                body = json.dumps(batch).encode()
                while not stop.is_set():
                    try:
                        r = http.post(f"http://127.0.0.1:{port}/events", content=body,
                                      headers={"X-Signature": signature(SECRET, body)})
                        if r.status_code == 202:
                            acknowledged.extend(e["event_id"] for e in batch)
                            break
                    except httpx.TransportError:
                        time.sleep(0.05)
                batch_no += 1

    proc = _start_intake(home, port)
    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = len(acknowledged)
    proc = _start_intake(home, port)
    time.sleep(1.5)
    stop.set()
    thread.join(timeout=10)
    proc.terminate()
    proc.wait(timeout=10)
    ids = []
    for path in sorted((home / "intake" / "pixel").glob("*/events.jsonl")):
        ids += [json.loads(line)["event_id"] for line in path.read_text().splitlines()]
    assert killed_at > 0 and len(acknowledged) > killed_at
    assert len(ids) == len(set(ids))
    assert set(acknowledged) <= set(ids)

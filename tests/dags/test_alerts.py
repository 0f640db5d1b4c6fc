"""Alerts: the channel an Airflow connection picks, real delivery to local webhook and SMTP
servers, and a failed task alerting once in a real dag.test() run."""

from __future__ import annotations

import asyncio
import email
import json
import socketserver
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from personalization.orchestration.alerts import Channel, channel_for, deadline_missed, send


class _Webhook(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, json.loads(body)))
        self.send_response(self.server.status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    """A Slack-style incoming webhook on a free port; `.received` holds (path, json) pairs."""
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    server.received, server.status = [], 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_port}/services/T0/B0/secret"
    yield server
    server.shutdown()


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib: EHLO, MAIL, RCPT, DATA, QUIT."""

    def handle(self):
        self.wfile.write(b"220 localhost test SMTP\r\n")
        envelope: dict = {"to": []}
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.wfile.write(b"250-localhost\r\n250 SIZE 100000\r\n")
            elif verb == b"MAIL":
                envelope["from"] = line.decode().split(":", 1)[1].strip()
                self.wfile.write(b"250 OK\r\n")
            elif verb == b"RCPT":
                envelope["to"].append(line.decode().split(":", 1)[1].strip())
                self.wfile.write(b"250 OK\r\n")
            elif verb == b"DATA":
                self.wfile.write(b"354 go on\r\n")
                data = b""
                while (chunk := self.rfile.readline()) != b".\r\n":
                    data += chunk
                envelope["message"] = email.message_from_bytes(data)
                self.server.received.append(envelope)
                self.wfile.write(b"250 OK queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"502 not implemented\r\n")


@pytest.fixture
def smtp_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    server.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _conn(**fields):
    from airflow.sdk import Connection

    return Connection(conn_id="personalization_alerts", **fields)


def test_the_connection_picks_the_channel_and_anything_unusable_falls_back_to_logging():
    assert channel_for(None) == Channel("log")
    hook = channel_for(_conn(conn_type="http", host="https://hooks.slack.com/services/T/B/X"))
    assert hook == Channel("webhook", url="https://hooks.slack.com/services/T/B/X")
    assert channel_for(_conn(conn_type="http", host="hooks.slack.com")).kind == "log"
    mail = channel_for(_conn(conn_type="smtp", host="mail.example.com", port=587,
                             extra=json.dumps({"to": "a@example.com, b@example.com"})))
    assert mail.kind == "email" and mail.to == ("a@example.com", "b@example.com")
    assert mail.smtp["starttls"] is True and mail.smtp["port"] == 587
    assert channel_for(_conn(conn_type="smtp", host="mail.example.com")).kind == "log"  # no `to`
    assert channel_for(_conn(conn_type="postgres", host="db")).kind == "log"


def test_an_alert_is_posted_to_the_webhook(webhook):
    assert send(Channel("webhook", url=webhook.url), "[airflow] x failed", "why\nwhere")
    assert webhook.received == [("/services/T0/B0/secret", {"text": "[airflow] x failed\nwhy\nwhere"})]


def test_an_alert_is_mailed_through_smtp(smtp_server):
    conn = _conn(conn_type="smtp", host="127.0.0.1", port=smtp_server.server_address[1],
                 extra=json.dumps({"to": "oncall@example.com", "starttls": False,
                                   "from_email": "airflow@example.com"}))
    assert send(channel_for(conn), "[airflow] build_marts failed for 2026-03-10", "dbt failed")
    (envelope,) = smtp_server.received
    assert envelope["to"] == ["<oncall@example.com>"]
    assert envelope["message"]["Subject"] == "[airflow] build_marts failed for 2026-03-10"
    assert envelope["message"].get_payload().strip() == "dbt failed"


def test_a_broken_channel_is_logged_and_never_raises(webhook, caplog):
    webhook.status = 500
    caplog.set_level("WARNING", logger="personalization")
    assert send(Channel("webhook", url=webhook.url), "s", "t") is False
    assert "alert_not_delivered channel=webhook" in caplog.text
    assert "secret" not in caplog.text  # the webhook URL is a credential


def test_a_late_run_alerts_from_the_deadline_callback(webhook, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_PERSONALIZATION_ALERTS",
                       json.dumps({"conn_type": "http", "host": webhook.url}))
    context = {"dag_run": {"dag_id": "personalization_nightly",
                           "dag_run_id": "scheduled__2026-03-10T00:00:00+00:00",
                           "logical_date": "2026-03-10T00:00:00Z", "state": "running"},
               "deadline": {"deadline_time": "2026-03-11T06:00:00Z"}}
    asyncio.run(deadline_missed(context=context))
    ((_, body),) = webhook.received
    assert body["text"].startswith("[airflow] personalization_nightly is late")
    assert "2026-03-11T06:00:00Z" in body["text"] and "state running" in body["text"]


@pytest.mark.slow
def test_a_failed_task_alerts_once_and_the_summary_fails_the_run_quietly(
        dags_airflow_db, webhook, monkeypatch, tmp_path):
    """A run for today: `business_day` refuses it at once (no retries), alerts once; the
    extracts never run; `run_summary` fails the run without a second alert."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.state import DagRunState

    monkeypatch.setenv("PERSONALIZATION_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIRFLOW_CONN_PERSONALIZATION_ALERTS",
                       json.dumps({"conn_type": "http", "host": webhook.url}))
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    dag = DagBag(dag_folder=str(dags_airflow_db / "dags")).dags["personalization_extract_only"]
    run = dag.test(logical_date=today)
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == DagRunState.FAILED
    assert states == {"business_day": "failed", "extract_crm": "upstream_failed",
                      "extract_shop": "upstream_failed", "extract_pixel": "upstream_failed",
                      "run_summary": "failed"}
    ((_, body),) = webhook.received
    subject, reason = body["text"].splitlines()[:2]
    assert subject == (f"[airflow] personalization_extract_only.business_day failed for "
                       f"{today.date()}")
    assert reason.startswith(f"AirflowFailException: business day {today.date()} has not ended")
    assert not (tmp_path / "home" / "lake").exists()
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:  # the failed run's note says what did not succeed
        note = session.query(DagRun).filter(DagRun.run_id == run.run_id).one().note
    assert note == (f"⚠ {today.date()}: 3 steps, 0 rows out; did not succeed: "
                    "extract_crm, extract_shop, extract_pixel")

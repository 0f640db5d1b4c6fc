"""Alerts for a failed task or a late nightly run, sent where an Airflow connection says.

The connection `personalization_alerts` (see `ALERT_CONN_ID`) picks the channel:

- none: the alert is only logged (one WARNING line); the default, so nothing is required;
- `conn_type` http/https with `host` = a full incoming-webhook URL (Slack, Mattermost,
  Rocket.Chat: they take `{"text": ...}`);
- `conn_type` smtp/email: `host`, `port`, `login`/`password` of the SMTP server; `extra`
  `{"to": "oncall@example.com, ...", "from_email": "...", "ssl": false, "starttls": true}`.

Sending never raises: a broken alert channel is logged and must not hide the failure itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

from airflow.sdk import BaseNotifier

from personalization.observability import log_event
from personalization.orchestration import ALERT_CONN_ID

logger = logging.getLogger(__name__)
WEBHOOK_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Channel:
    """Where an alert goes: `log`, `webhook` (url) or `email` (SMTP settings and recipients)."""

    kind: str
    url: str = ""
    to: tuple[str, ...] = ()
    smtp: dict[str, Any] = field(default_factory=dict)


def channel_for(conn: Any | None) -> Channel:
    """The channel an Airflow connection describes; `log` when there is none or it is unusable."""
    if conn is None:
        return Channel("log")
    kind = (conn.conn_type or "").lower()
    extra = conn.extra_dejson or {}
    if kind in ("http", "https"):
        url = conn.host or ""
        if url.startswith(("http://", "https://")):
            return Channel("webhook", url=url)
        log_event(logger, "alert_channel_unusable", logging.WARNING, conn_id=conn.conn_id,
                  reason="host must hold the full webhook URL (https://...)")
        return Channel("log")
    if kind in ("smtp", "email"):
        to = tuple(a.strip() for a in str(extra.get("to", "")).split(",") if a.strip())
        if not (conn.host and to):
            log_event(logger, "alert_channel_unusable", logging.WARNING, conn_id=conn.conn_id,
                      reason="an SMTP connection needs host and extra.to")
            return Channel("log")
        return Channel("email", to=to, smtp={
            "host": conn.host, "port": conn.port, "login": conn.login, "password": conn.password,
            "ssl": bool(extra.get("ssl", False)), "starttls": bool(extra.get("starttls", True)),
            "from_email": extra.get("from_email") or f"airflow@{socket.getfqdn()}"})
    log_event(logger, "alert_channel_unusable", logging.WARNING, conn_id=conn.conn_id,
              reason=f"conn_type {kind!r} is not http, https, smtp or email")
    return Channel("log")


def send(channel: Channel, subject: str, text: str) -> bool:
    """Log the alert, then deliver it on `channel`; returns whether delivery worked."""
    log_event(logger, "alert", logging.WARNING, channel=channel.kind, subject=subject, text=text)
    try:
        if channel.kind == "webhook":
            import httpx

            httpx.post(channel.url, json={"text": f"{subject}\n{text}"},
                       timeout=WEBHOOK_TIMEOUT_SECONDS).raise_for_status()
        elif channel.kind == "email":
            _send_email(channel, subject, text)
    except Exception as e:  # never let the alert hide the failure it reports
        log_event(logger, "alert_not_delivered", logging.ERROR, channel=channel.kind,
                  error=_redacted(e, channel))
        return False
    return True


def _redacted(error: Exception, channel: Channel) -> str:
    """One line about a delivery error, without the webhook URL (it is the credential)."""
    text = str(error).splitlines()[0] if str(error) else ""
    if channel.url:
        text = text.replace(channel.url, "<webhook url>")
    status = getattr(getattr(error, "response", None), "status_code", None)
    return f"{type(error).__name__}: " + (f"HTTP {status}" if status else text)


def _send_email(channel: Channel, subject: str, text: str) -> None:
    s = channel.smtp
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = subject, s["from_email"], ", ".join(channel.to)
    message.set_content(text)
    smtp_class = smtplib.SMTP_SSL if s["ssl"] else smtplib.SMTP
    with smtp_class(s["host"], s["port"] or (465 if s["ssl"] else 25), timeout=30) as smtp:
        if s["starttls"] and not s["ssl"]:
            smtp.starttls()
        if s["login"]:
            smtp.login(s["login"], s["password"] or "")
        smtp.send_message(message)


def _connection(conn_id: str) -> Any | None:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


class AlertNotifier(BaseNotifier):
    """`on_failure_callback` of every task: one alert per task that failed for good.

    Args:
        conn_id: the Airflow connection that picks the channel (missing: log only).
    """

    def __init__(self, conn_id: str = ALERT_CONN_ID):
        super().__init__()
        self.conn_id = conn_id

    def notify(self, context: Any) -> None:
        subject, text = failure_message(context)
        send(channel_for(_connection(self.conn_id)), subject, text)


def failure_message(context: Any) -> tuple[str, str]:
    """Subject and body of a task-failure alert: what failed, for which day, why, where to look."""
    from personalization.orchestration.schedule import business_day

    ti, dag_run = context["ti"], context["dag_run"]
    ds = business_day(dag_run.logical_date, dag_run.run_after)
    error = context.get("exception")
    reason = f"{type(error).__name__}: {error}" if error else "see the task log"
    subject = f"[airflow] {ti.dag_id}.{ti.task_id} failed for {ds}"
    text = (f"{reason.splitlines()[0][:500]}\nrun {ti.run_id}, try {ti.try_number}\n"
            f"log: {getattr(ti, 'log_url', '')}\n"
            "runbook: docs/operations.md#when-a-task-fails (fix, then clear the task; "
            "a new trigger for the same date is refused)")
    return subject, text


async def deadline_missed(context: dict | None = None, conn_id: str = ALERT_CONN_ID) -> None:
    """DeadlineAlert callback (runs in the triggerer): the nightly run is late."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    run = (context or {}).get("dag_run") or {}
    deadline = ((context or {}).get("deadline") or {}).get("deadline_time")
    subject = f"[airflow] {run.get('dag_id', 'personalization_nightly')} is late"
    text = (f"run {run.get('dag_run_id')} (logical date {run.get('logical_date')}) has not "
            f"finished by its deadline {deadline}; state {run.get('state')}. Exports for "
            "marketers are not published until it does. See docs/operations.md#deploying-to-production.")
    try:
        conn = await BaseHook.aget_connection(conn_id)
    except AirflowNotFoundException:
        conn = None
    await asyncio.to_thread(send, channel_for(conn), subject, text)


DEADLINE_ENV = "PERSONALIZATION_NIGHTLY_DEADLINE_HOURS"


def nightly_deadline() -> Any | None:
    """The nightly run's deadline: alert when a run is unfinished this long after it was queued.

    Hours from `PERSONALIZATION_NIGHTLY_DEADLINE_HOURS` (default 6, exports are due in the
    morning); 0 turns it off. Off is needed for `dag.test()` / `airflow dags test` in
    Airflow 3.3.2, which fail at the end of a successful run of a DAG with a deadline
    (they look the alert up by an id only the DAG processor assigns).
    """
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    hours = float(os.environ.get(DEADLINE_ENV, "6"))
    if hours <= 0:
        return None
    return DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT,
                         interval=timedelta(hours=hours), name="nightly run late",
                         callback=AsyncCallback(deadline_missed))

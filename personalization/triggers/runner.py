"""One evaluation of every trigger rule (`personalization triggers run`): read the intake's
new events, find who is due, apply consent and contact rules, send at most once.

Exactly-once bookkeeping: a decision is committed as `sending` before the ESP is called and
set to `sent` after. A run that dies in between finds the `sending` row next time: an
idempotent sender repeats the call under the same key; any other records
`failed: outcome_unknown` rather than risk a second email.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from personalization import lake
from personalization.config import Settings
from personalization.exceptions import (
    ConfigError,
    SendOutcomeUnknown,
    SyncError,
    TriggerRunnerBusy,
)
from personalization.export.consent import suppressions_path
from personalization.observability import log_event
from personalization.privacy import encryption, ledger
from personalization.privacy.emails import email_sha256_sql
from personalization.privacy.matching import erased_condition
from personalization.sql import literal
from personalization.triggers.context import context_dir
from personalization.triggers.policy import next_allowed
from personalization.triggers.rules import TriggerRule, load_rules
from personalization.triggers.senders import Sender, TriggerMessage, make_sender, options_for
from personalization.triggers.state import ingest, open_state, prune, publish_sends

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("unified_id", "dedup_key", "due_at")
MAX_SEND_ATTEMPTS = 5  # for `sending` rows of idempotent senders


@dataclass
class TickReport:
    """What one evaluation did."""

    now: datetime
    events_read: int = 0
    decisions: dict[str, dict[str, int]] = field(default_factory=dict)  # trigger -> status -> n
    deferred: int = 0
    seconds: float = 0.0

    def count(self, trigger: str, status: str, n: int = 1) -> None:
        per = self.decisions.setdefault(trigger, {})
        per[status] = per.get(status, 0) + n


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _attach_context(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Views over the nightly snapshot plus the intraday privacy lists."""
    ctx = context_dir(settings)
    if not ctx.exists():
        raise ConfigError(f"no trigger context at {ctx}: run the nightly pipeline first "
                          "(its step publish_trigger_context writes it)")
    target = ctx.resolve()
    for name in ("people", "keys", "products", "recommendations"):
        con.execute(f"create or replace temp view {name} as "
                    f"select * from read_parquet({literal(target / (name + '.parquet'))}"
                    f"{encryption.parquet_read_options(settings)})")
    # Suppressions and erasure requests can arrive during the day: read them every tick.
    suppressions = suppressions_path(settings)
    con.execute("create or replace temp table blocked_hashes (email_sha256 varchar, reason varchar)")
    if suppressions.is_file():
        con.execute(f"""insert into blocked_hashes select lower(email_sha256), 'suppressed'
                        from read_csv({literal(suppressions)}, header=true, all_varchar=true)
                        where email_sha256 is not null""")
    con.execute(f"""insert into blocked_hashes select key_sha256, 'erased' from {ledger.TABLE}
                    where key_kind = 'email'""")
    if lake.partition_files(settings, "crm/erasure_requests"):
        con.execute(f"""insert into blocked_hashes
                        select {email_sha256_sql('email')}, 'erased'
                        from read_parquet({literal(lake.partition_file(settings, 'crm/erasure_requests'))}
                                          {encryption.parquet_read_options(settings)})
                        where email is not null""")
    # An event finds its person by shop login, by the hash of an email link, by a cookie
    # logged in today (only when the cookie points at one person), or by a known cookie.
    con.execute("""
        create or replace temp view events as
        with logins as (
            select e.anonymous_id, any_value(k.unified_id) as unified_id
            from received_events as e
            inner join keys as k on k.key_type = 'customer_id' and k.key = e.customer_id
            where e.anonymous_id is not null
            group by e.anonymous_id
            having count(distinct k.unified_id) = 1
        )
        select e.*, coalesce(by_login.unified_id, by_email.unified_id, today.unified_id,
                             by_cookie.unified_id) as unified_id
        from received_events as e
        left join keys as by_login on by_login.key_type = 'customer_id' and by_login.key = e.customer_id
        left join keys as by_email on by_email.key_type = 'email_sha256' and by_email.key = e.email_sha256
        left join logins as today on today.anonymous_id = e.anonymous_id
        left join keys as by_cookie on by_cookie.key_type = 'anonymous_id' and by_cookie.key = e.anonymous_id
    """)


def _forget_erased(con: duckdb.DuckDBPyConnection, settings: Settings) -> set:
    """Delete what the runner holds about anyone in the erasure ledger; returns the decision
    days whose published partitions must be rewritten."""
    days: set = set()
    if not ledger.register_ledger(con, settings):
        return days
    for table in ("received_events", "sends"):
        columns = [r[0] for r in con.execute(f"describe {table}").fetchall()]
        condition = erased_condition(columns, ledger=ledger.TABLE)
        if table == "sends":
            days = {r[0] for r in con.execute(
                f"select distinct decided_at::date from sends where {condition}").fetchall()}
        con.execute(f"delete from {table} where {condition}")
    return days


def _candidates(con: duckdb.DuckDBPyConnection, rule: TriggerRule, now: datetime) -> None:
    try:
        con.execute(f"create or replace temp table candidates as {rule.render(now)}")
    except duckdb.Error as e:
        raise ConfigError(f"trigger {rule.name}: its query failed: {str(e).splitlines()[0]}") from None
    columns = {r[0] for r in con.execute("describe candidates").fetchall()}
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ConfigError(f"trigger {rule.name}: its query must return {', '.join(missing)}")


def _judged(con: duckdb.DuckDBPyConnection, rule: TriggerRule, now: datetime,
            settings: Settings) -> list[dict[str, Any]]:
    """Due candidates not decided before, each with the reason it may not be sent (or None)."""
    window = timedelta(hours=settings.trigger_frequency_window_hours)
    rows = con.execute("""
        with due as (
            select * from candidates
            where due_at <= $now and unified_id is not null
              and dedup_key not in (select dedup_key from sends)
            qualify row_number() over (partition by dedup_key order by due_at) = 1
        ),
        recent_sends as (
            select unified_id, count(*) as n,
                   count(*) filter (where trigger = $trigger
                                    and sent_at > $now - $cooldown) as same_trigger
            from sends where status = 'sent' and sent_at > $now - $window group by unified_id
        ),
        campaign_emails as (  -- campaign mails we know of: the ones a person opened or clicked
            select unified_id, count(distinct campaign_id) as n from events
            where event_type in ('email_open', 'email_click') and campaign_id is not null
              and occurred_at > $now - $window and unified_id is not null
            group by unified_id
        )
        select due.*, p.email, p.email_sha256 as person_email_sha256, p.first_name,
               p.language, p.country,
               case
                   when p.unified_id is null then 'unknown_person'
                   when due.due_at < $now - $max_age then 'expired'
                   when p.is_erased or p.email_sha256 in (
                       select email_sha256 from blocked_hashes where reason = 'erased') then 'erased'
                   when p.email_sha256 in (
                       select email_sha256 from blocked_hashes where reason = 'suppressed')
                       then 'suppressed'
                   when p.is_unsubscribed then 'unsubscribed'
                   when not p.is_opted_in then 'no_consent'
                   when not p.is_contactable then 'not_contactable'
                   when coalesce(s.same_trigger, 0) > 0 then 'cooldown'
                   when coalesce(s.n, 0) + coalesce(c.n, 0) >= $cap then 'frequency_cap'
               end as reason,
               row_number() over (partition by due.unified_id order by due.due_at, due.dedup_key)
                   as person_rank
        from due
        left join people as p on p.unified_id = due.unified_id
        left join recent_sends as s on s.unified_id = due.unified_id
        left join campaign_emails as c on c.unified_id = due.unified_id
        order by due.due_at, due.dedup_key
    """, {"now": now, "trigger": rule.name, "window": window,
          "cooldown": timedelta(hours=rule.cooldown_hours),
          "max_age": timedelta(hours=rule.max_age_hours),
          "cap": settings.trigger_frequency_cap}).fetchall()
    names = [d[0] for d in con.description]
    return [dict(zip(names, row, strict=True)) for row in rows]


def _merge_values(rule: TriggerRule, row: dict[str, Any]) -> dict[str, Any]:
    values = {}
    for f in rule.merge_fields:
        value = row.get(f.column)
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value if v is not None) or None
        values[f.name] = f.fallback if value in (None, "") else value
    return values


def _decide(con, rule: TriggerRule, row: dict[str, Any], status: str, reason: str | None,
            now: datetime) -> None:
    con.execute("""insert into sends (trigger, dedup_key, unified_id, email_sha256, status,
                                      reason, due_at, decided_at, attempts, campaign)
                   values (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)""",
                [rule.name, row["dedup_key"], row["unified_id"], row.get("person_email_sha256"),
                 status, reason, row["due_at"], now, rule.campaign])


def _send(con, sender: Sender, rule: TriggerRule, message: TriggerMessage, now: datetime,
          started: float) -> str:
    """Call the ESP for a committed `sending` decision and record the outcome."""
    con.execute("update sends set attempts = attempts + 1 where dedup_key = ?", [message.dedup_key])
    try:
        sender.send(message)
    except SendOutcomeUnknown as e:
        status = "sending" if sender.idempotent else "failed"
        reason = "outcome_unknown" if status == "failed" else None
        log_event(logger, "trigger_send_unknown", logging.WARNING, trigger=rule.name,
                  key=message.key_hash, retry_later=sender.idempotent, error=str(e))
    except (SyncError, ConfigError) as e:
        status, reason = "failed", str(e)[:200]
        log_event(logger, "trigger_send_failed", logging.WARNING, trigger=rule.name,
                  key=message.key_hash, error=reason)
    else:
        status, reason = "sent", None
    sent_at = now + timedelta(seconds=time.perf_counter() - started) if status == "sent" else None
    con.execute("update sends set status = ?, reason = ?, sent_at = ? where dedup_key = ?",
                [status, reason, sent_at, message.dedup_key])
    return status


def _message(rule: TriggerRule, row: dict[str, Any], target: str) -> TriggerMessage:
    return TriggerMessage(trigger=rule.name, dedup_key=row["dedup_key"],
                          unified_id=row["unified_id"], email=row["email"],
                          campaign=rule.campaign, template=rule.template,
                          merge_fields=_merge_values(rule, row),
                          esp_options=options_for(rule.esp, target))


def _recover(con, sender: Sender, rules: dict[str, TriggerRule], now: datetime, started: float,
             report: TickReport) -> None:
    """Settle decisions a killed run left as `sending`."""
    pending = con.execute("""select s.trigger, s.dedup_key, s.unified_id, s.attempts, p.email,
                                    p.first_name, p.language, p.country
                             from sends as s left join people as p using (unified_id)
                             where s.status = 'sending'""").fetchall()
    for trigger, key, unified_id, attempts, email, *_ in pending:
        rule = rules.get(trigger)
        if not sender.idempotent or rule is None or email is None or attempts >= MAX_SEND_ATTEMPTS:
            con.execute("update sends set status = 'failed', reason = 'outcome_unknown' "
                        "where dedup_key = ?", [key])
            report.count(trigger, "failed")
            continue
        # The merge fields of the original candidate are gone; resend with what we know.
        row = {"dedup_key": key, "unified_id": unified_id, "email": email}
        report.count(trigger, _send(con, sender, rule, _message(rule, row, sender.name),
                                    now, started))


def run_once(settings: Settings, now: datetime | None = None,
             sender: Sender | None = None) -> TickReport:
    """Evaluate every rule once as of `now` (naive UTC; default the clock).

    Raises:
        ConfigError: no rules folder, a malformed rule, no context yet, or another runner.
    """
    started = time.perf_counter()
    now = now or _utcnow()
    rules = load_rules(settings.triggers_dir)
    own_sender = sender is None
    sender = sender or make_sender(settings)
    con = open_state(settings)
    report = TickReport(now=now)
    touched = {now.date()}
    try:
        report.events_read = ingest(con, settings, now.date())
        prune(con, settings, now)
        touched |= _forget_erased(con, settings)
        _attach_context(con, settings)
        touched |= {r[0] for r in con.execute(
            "select distinct decided_at::date from sends where status = 'sending'").fetchall()}
        _recover(con, sender, {r.name: r for r in rules}, now, started, report)
        for rule in rules:
            _candidates(con, rule, now)
            for row in _judged(con, rule, now, settings):
                if row["reason"] is not None:
                    _decide(con, rule, row, "suppressed", row["reason"], now)
                    report.count(rule.name, "suppressed")
                    continue
                if row["person_rank"] > 1 or next_allowed(
                        now, row["country"], settings.trigger_quiet_hours) > now:
                    report.deferred += 1  # another send for them this tick, or quiet hours
                    continue
                _decide(con, rule, row, "sending", None, now)
                status = _send(con, sender, rule, _message(rule, row, sender.name), now, started)
                report.count(rule.name, status)
        publish_sends(con, settings, touched)
    finally:
        con.close()
        if own_sender:
            sender.close()
    report.seconds = round(time.perf_counter() - started, 3)
    log_event(logger, "triggers_evaluated", now=now.isoformat(), events_read=report.events_read,
              deferred=report.deferred, seconds=report.seconds, decisions=report.decisions)
    return report


def run_loop(settings: Settings, every_seconds: float, stop: Any = None) -> None:
    """Evaluate every `every_seconds` until interrupted (or `stop()` returns True)."""
    while not (stop and stop()):
        tick = time.monotonic()
        try:
            run_once(settings)
        except ConfigError:
            raise  # a rule or setting to fix: looping would only repeat it
        except TriggerRunnerBusy as e:
            log_event(logger, "triggers_tick_skipped", logging.WARNING, error=str(e)[:300])
        except Exception as e:  # noqa: BLE001 - keep looping; the next tick retries
            log_event(logger, "triggers_tick_failed", logging.ERROR, error=str(e)[:300])
        time.sleep(max(0.0, every_seconds - (time.monotonic() - tick)))


"""Behavioural triggers: intake -> runner -> at most one send, with consent and contact rules.

The warehouse here is a small hand-made one holding the public marts the runner's snapshot
reads (customer_profiles, identity_map, products, customer_scores), so every expectation can
be computed by hand; tests/test_e2e.py runs a trigger on a real nightly warehouse.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from personalization.config import load_settings
from personalization.exceptions import ConfigError
from personalization.intake import create_app, signature
from personalization.triggers import publish_context, run_once
from personalization.triggers.senders import (
    FileDropSender,
    KlaviyoSender,
    SendGridSender,
    drop_files,
)
from tests.fake_esp.trigger_sends import FakeKlaviyoEvents, FakeSendGridMail

REPO = Path(__file__).resolve().parent.parent
SECRET = "test-intake-secret"
DS = date(2026, 10, 14)
T0 = datetime(2026, 10, 15, 10, 0, 0)  # 12:00 in Berlin: outside quiet hours


def sha(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


# unified_id, email, first_name, country, opted_in, unsubscribed, erased, shop customer_id
PEOPLE = [
    ("u_anna", "anna@example.com", "Anna", "DE", True, False, False, "c-anna"),
    ("u_bob", "bob@example.com", "Bob", "DE", False, False, False, "c-bob"),
    ("u_cleo", "cleo@example.com", "Cleo", "DE", True, True, False, "c-cleo"),
    ("u_dan", "dan@example.com", "Dan", "DE", True, False, True, "c-dan"),
    ("u_eve", "eve@example.com", "Eve", "GB", True, False, False, "c-eve"),
]


def _warehouse(settings) -> None:
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("""create table customer_profiles (unified_id varchar, email varchar,
            email_sha256 varchar, first_name varchar, language varchar, country varchar,
            is_contactable boolean, is_erased boolean, is_unsubscribed boolean,
            is_opted_in boolean)""")
        con.execute("create table identity_map (source varchar, source_id varchar, "
                    "unified_id varchar, match_rule varchar, match_score double)")
        con.execute("create table products (sku varchar, name varchar, category varchar, "
                    "price double, is_active boolean)")
        con.execute("create table customer_scores (unified_id varchar, next_best_products varchar[])")
        for uid, email, first, country, opted, unsub, erased, cust in PEOPLE:
            contactable = opted and not unsub and not erased
            con.execute("insert into customer_profiles values (?, ?, ?, ?, 'de', ?, ?, ?, ?, ?)",
                        [uid, None if erased else email, sha(email), first, country,
                         contactable, erased, unsub, opted])
            con.execute("insert into identity_map values ('shop', ?, ?, 'email', 1.0)", [cust, uid])
        con.execute("insert into identity_map values ('pixel', 'cookie-anna', 'u_anna', "
                    "'cookie_login', 1.0)")
        con.execute("insert into products values ('SKU-1', 'Rain jacket', 'outdoor', 120.0, true),"
                    " ('SKU-2', 'Wool socks', 'outdoor', 15.5, true),"
                    " ('SKU-3', 'Tent', 'outdoor', 300.0, true)")
        con.execute("insert into customer_scores values ('u_anna', ['SKU-3', 'SKU-2'])")


@pytest.fixture
def home(tmp_path):
    settings = load_settings(home=tmp_path / "home", intake_secret=SECRET,
                             triggers_dir=REPO / "triggers")
    _warehouse(settings)
    publish_context(DS, settings)
    return settings


def post(settings, events, at: datetime = T0, source_headers=None):
    client = TestClient(create_app(settings, clock=lambda: at.replace(tzinfo=UTC)))
    body = json.dumps(events).encode()
    headers = {"X-Signature": signature(SECRET.encode(), body), **(source_headers or {})}
    return client.post("/events", content=body, headers=headers)


def event(event_id, event_type, at, customer_id=None, sku=None, anonymous_id=None, **extra):
    return {"event_id": event_id, "occurred_at": at.isoformat() + "Z", "event_type": event_type,
            "customer_id": customer_id, "sku": sku, "anonymous_id": anonymous_id, **extra}


def decisions(settings) -> dict[str, tuple[str, str | None]]:
    files = sorted((settings.lake_dir / "raw" / "triggers" / "sends").glob("*/*.parquet"))
    if not files:
        return {}
    rows = duckdb.sql(f"select unified_id || ':' || trigger, status, reason "
                      f"from read_parquet({[str(f) for f in files]})").fetchall()
    return {k: (s, r) for k, s, r in rows}


def test_cart_abandoned_emails_the_consenting_person_once_and_nobody_else(home):
    carts = [event(f"e-{c}", "add_to_cart", T0 - timedelta(minutes=2), customer_id=c, sku="SKU-1")
             for c in ("c-anna", "c-bob", "c-cleo", "c-dan")]
    assert post(home, carts).status_code == 202

    early = run_once(home, now=T0 + timedelta(minutes=20))  # the 30-minute wait is not over
    assert early.decisions == {} and drop_files(home, "cart_abandoned") == []

    run_once(home, now=T0 + timedelta(minutes=31))
    sent = [json.loads(p.read_text()) for p in drop_files(home, "cart_abandoned")]
    assert [s["email"] for s in sent] == ["anna@example.com"]
    assert sent[0]["merge_fields"]["CART_ITEMS"] == "Rain jacket"
    assert sent[0]["merge_fields"]["FNAME"] == "Anna"
    assert sent[0]["merge_fields"]["RECO_1"] == "Tent"
    assert decisions(home) == {
        "u_anna:cart_abandoned": ("sent", None),
        "u_bob:cart_abandoned": ("suppressed", "no_consent"),
        "u_cleo:cart_abandoned": ("suppressed", "unsubscribed"),
        "u_dan:cart_abandoned": ("suppressed", "erased"),
    }

    # A restarted runner (a new process would do the same: all state is on disk) and more
    # adds to the same cart: still one email.
    assert post(home, [event("e-more", "add_to_cart", T0 + timedelta(minutes=35),
                             customer_id="c-anna", sku="SKU-2")],
                at=T0 + timedelta(minutes=36)).status_code == 202
    run_once(home, now=T0 + timedelta(hours=2))
    assert len(drop_files(home, "cart_abandoned")) == 1


def test_a_checkout_within_the_wait_means_no_email(home):
    post(home, [event("a1", "add_to_cart", T0, customer_id="c-anna", sku="SKU-1"),
                event("a2", "checkout_start", T0 + timedelta(minutes=10), customer_id="c-anna")],
         at=T0 + timedelta(minutes=11))
    run_once(home, now=T0 + timedelta(minutes=45))
    assert drop_files(home, "cart_abandoned") == []


def test_a_cookie_seen_logged_in_today_finds_its_person(home):
    # The cart is added anonymously; later the same cookie logs in as c-eve.
    post(home, [event("k1", "add_to_cart", T0, anonymous_id="cookie-new", sku="SKU-2"),
                event("k2", "login", T0 + timedelta(minutes=1), anonymous_id="cookie-new",
                      customer_id="c-eve")], at=T0 + timedelta(minutes=2))
    run_once(home, now=T0 + timedelta(minutes=40))
    assert [json.loads(p.read_text())["email"] for p in drop_files(home, "cart_abandoned")] == [
        "eve@example.com"]


def test_quiet_hours_hold_the_email_until_morning_in_the_persons_time_zone(home):
    night = datetime(2026, 10, 15, 20, 0)  # 22:00 in Berlin
    post(home, [event("q1", "add_to_cart", night, customer_id="c-anna", sku="SKU-1")],
         at=night + timedelta(minutes=1))
    report = run_once(home, now=night + timedelta(minutes=40))
    assert report.deferred == 1 and drop_files(home, "cart_abandoned") == []
    run_once(home, now=datetime(2026, 10, 16, 6, 5))  # 08:05 in Berlin
    assert len(drop_files(home, "cart_abandoned")) == 1


def test_frequency_cap_counts_every_trigger_and_known_campaign_emails(tmp_path):
    settings = load_settings(home=tmp_path / "home", intake_secret=SECRET,
                             triggers_dir=REPO / "triggers", trigger_frequency_cap=1)
    _warehouse(settings)
    publish_context(DS, settings)
    post(settings, [
        event("f1", "email_open", T0 - timedelta(hours=3), customer_id="c-anna", campaign_id="weekly"),
        event("f2", "add_to_cart", T0, customer_id="c-anna", sku="SKU-1"),
    ], at=T0 + timedelta(minutes=1))
    run_once(settings, now=T0 + timedelta(minutes=40))
    assert drop_files(settings, "cart_abandoned") == []
    assert decisions(settings)["u_anna:cart_abandoned"] == ("suppressed", "frequency_cap")


def test_an_erasure_request_or_esp_suppression_during_the_day_stops_the_send(home):
    suppressions = home.home / "suppressions.csv"
    suppressions.write_text(f"email_sha256,reason,suppressed_at\n{sha('anna@example.com')},"
                            "complaint,2026-10-15\n")
    post(home, [event("s1", "add_to_cart", T0, customer_id="c-anna", sku="SKU-1")],
         at=T0 + timedelta(minutes=1))
    run_once(home, now=T0 + timedelta(minutes=40))
    assert decisions(home)["u_anna:cart_abandoned"] == ("suppressed", "suppressed")


def test_klaviyo_lost_answer_is_replayed_under_the_same_unique_id(home, monkeypatch):
    with FakeKlaviyoEvents() as fake:
        monkeypatch.setenv("PERSONALIZATION_KLAVIYO_API_KEY", fake.api_key)
        monkeypatch.setenv("PERSONALIZATION_KLAVIYO_BASE_URL", fake.url)
        fake.add_fault("reset", path="/api/events")  # applied, then the answer is lost
        settings = home.model_copy(update={"esp_backoff_base_seconds": 0.01})
        post(settings, [event("kl1", "add_to_cart", T0, customer_id="c-anna", sku="SKU-1")],
             at=T0 + timedelta(minutes=1))
        run_once(settings, now=T0 + timedelta(minutes=40), sender=KlaviyoSender(settings))
        assert fake.posts == 2  # the replay
        assert list(fake.recorded) == [("anna@example.com", "Cart Abandoned", fake_key(fake))]
        assert decisions(settings)["u_anna:cart_abandoned"] == ("sent", None)


def fake_key(fake) -> str:
    return next(iter(fake.recorded))[2]


def test_sendgrid_lost_answer_is_never_resent(home, monkeypatch, tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    for suffix in (".yml", ".sql"):
        (rules / f"cart_abandoned{suffix}").write_text(
            (REPO / "triggers" / f"cart_abandoned{suffix}").read_text())
    with (rules / "cart_abandoned.yml").open("a") as fh:
        fh.write("  sendgrid: {template_id: d-cart, from_email: shop@example.com}\n")
    with FakeSendGridMail() as fake:
        monkeypatch.setenv("PERSONALIZATION_SENDGRID_API_KEY", fake.api_key)
        monkeypatch.setenv("PERSONALIZATION_SENDGRID_BASE_URL", fake.url)
        fake.add_fault("reset", path="/v3/mail/send")
        settings = home.model_copy(update={"triggers_dir": rules})
        post(settings, [event("sg1", "add_to_cart", T0, customer_id="c-anna", sku="SKU-1")],
             at=T0 + timedelta(minutes=1))
        for minutes in (40, 41, 60):
            run_once(settings, now=T0 + timedelta(minutes=minutes), sender=SendGridSender(settings))
        assert [m["email"] for m in fake.sent] == ["anna@example.com"]  # applied once, never again
        assert decisions(settings)["u_anna:cart_abandoned"] == ("failed", "outcome_unknown")


KILL_SCRIPT = textwrap.dedent("""
    import os, sys
    from datetime import datetime
    from personalization.config import load_settings
    from personalization.triggers import run_once
    from personalization.triggers.senders import FileDropSender

    class SendThenDie(FileDropSender):
        idempotent = {idempotent}
        def send(self, message):
            super().send(message)       # the ESP has it ...
            os._exit(9)                 # ... and the runner dies before recording it

    settings = load_settings(home=sys.argv[1], intake_secret="x", triggers_dir=sys.argv[2])
    run_once(settings, now=datetime.fromisoformat(sys.argv[3]), sender=SendThenDie(settings))
""")


@pytest.mark.parametrize("idempotent", [True, False])
def test_a_runner_killed_between_send_and_record_never_sends_twice(home, tmp_path, idempotent):
    post(home, [event("kill1", "add_to_cart", T0, customer_id="c-anna", sku="SKU-1")],
         at=T0 + timedelta(minutes=1))
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT.format(idempotent=idempotent))
    died = subprocess.run([sys.executable, str(script), str(home.home), str(REPO / "triggers"),
                           (T0 + timedelta(minutes=40)).isoformat()], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert died.returncode == 9, died.stderr[-2000:]
    assert len(drop_files(home, "cart_abandoned")) == 1

    class Counting(FileDropSender):
        calls = 0

        def send(self, message):
            Counting.calls += 1
            super().send(message)

    Counting.idempotent = idempotent
    run_once(home, now=T0 + timedelta(minutes=41), sender=Counting(home))
    run_once(home, now=T0 + timedelta(minutes=50), sender=Counting(home))
    assert len(drop_files(home, "cart_abandoned")) == 1
    expected = ("sent", None) if idempotent else ("failed", "outcome_unknown")
    assert decisions(home)["u_anna:cart_abandoned"] == expected
    assert Counting.calls == (1 if idempotent else 0)  # the replay rewrote the same file


def test_a_malformed_rule_is_one_clear_error(home, tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "broken.yml").write_text("wait_minutes: -5\n")
    (rules / "broken.sql").write_text("select 1")
    with pytest.raises(ConfigError, match="wait_minutes must be a non-negative number"):
        run_once(home.model_copy(update={"triggers_dir": rules}), now=T0)
    (rules / "broken.yml").write_text("wait_minutes: 5\n")
    with pytest.raises(ConfigError, match="must return unified_id, dedup_key, due_at"):
        run_once(home.model_copy(update={"triggers_dir": rules}), now=T0)


def test_no_context_yet_is_one_clear_error(tmp_path):
    settings = load_settings(home=tmp_path / "empty", intake_secret=SECRET,
                             triggers_dir=REPO / "triggers")
    with pytest.raises(ConfigError, match="run the nightly pipeline first"):
        run_once(settings, now=T0)


def test_the_runner_forgets_a_person_as_soon_as_the_erasure_ledger_names_them(home):
    post(home, [event("er1", "add_to_cart", T0, customer_id="c-anna", sku="SKU-1",
                      anonymous_id="cookie-anna")], at=T0 + timedelta(minutes=1))
    run_once(home, now=T0 + timedelta(minutes=40))
    assert decisions(home)["u_anna:cart_abandoned"] == ("sent", None)
    ledger = home.home / "privacy" / "erasure_ledger.parquet"
    ledger.parent.mkdir(parents=True)
    duckdb.sql(f"""copy (select * from (values
                   (sha256('anna@example.com'), 'email', date '2026-10-15', null::date),
                   (sha256('shop:c-anna'), 'record', date '2026-10-15', null::date),
                   (sha256('unified:u_anna'), 'unified', date '2026-10-15', null::date))
                   t(key_sha256, key_kind, erased_on, applied_on)) to '{ledger}' (format parquet)""")
    post(home, [event("er2", "add_to_cart", T0 + timedelta(hours=1), customer_id="c-anna",
                      sku="SKU-2")], at=T0 + timedelta(hours=1, minutes=1))
    run_once(home, now=T0 + timedelta(hours=2))
    assert "u_anna:cart_abandoned" not in decisions(home)
    with duckdb.connect(str(home.triggers_state_dir / "state.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from received_events "
                           "where customer_id = 'c-anna'").fetchone() == (0,)


def test_the_portal_shows_decisions_per_trigger_reason_and_hour(home):
    import re

    from personalization.portal import add_user
    from personalization.portal import create_app as portal_app

    carts = [event(f"p-{c}", "add_to_cart", T0, customer_id=c, sku="SKU-1")
             for c in ("c-anna", "c-bob", "c-cleo")]
    post(home, carts, at=T0 + timedelta(minutes=1))
    run_once(home, now=T0 + timedelta(minutes=40))
    add_user(home, "mia", "a-long-password-1", "marketer")
    with TestClient(portal_app(home), follow_redirects=False) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
        client.post("/login", data={"username": "mia", "password": "a-long-password-1",
                                    "csrf_token": token, "next": "/"})
        page = client.get("/triggers", params={"hours": 24}).text
    totals = re.search(r'id="trigger-totals".*?</table>', page, re.S).group(0)
    cells = re.findall(r"<td>([^<]*)</td>", totals)
    assert cells == ["cart_abandoned", "1", "2", "0"]
    reasons = re.search(r'id="trigger-reasons".*?</table>', page, re.S).group(0)
    assert "no_consent" in reasons and "unsubscribed" in reasons
    assert "2026-10-15 10:00" in page  # the hour the decisions were made (UTC)

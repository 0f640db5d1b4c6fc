"""Marketer portal routes on a hand-made fixture export (FastAPI TestClient, real files)."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import shutil
import stat
import threading
import zipfile
from datetime import date

import pytest
from fastapi.testclient import TestClient
from fixtures_portal.build import DATES, email_of
from fixtures_portal.build import build as build_fixture

from personalization.config import load_settings
from personalization.portal import add_user, create_app, demo_login
from personalization.portal.abtest import (
    campaign_results,
    normal_cdf,
    sample_size_per_arm,
    two_proportion_z_test,
    verdict,
)
from personalization.portal.charts import delta_chart, line_chart
from personalization.portal.markdown import render as render_markdown
from personalization.portal.security import mask_email, safe_child
from personalization.portal.store import load_export
from personalization.portal.users import authenticate, users_path

MARKETER, MARKETER_PW = "marketer", "correct-horse-1"
ADMIN, ADMIN_PW = "boss", "admin-pass-123"
SECRET = "TOP-SECRET-OUTSIDE-EXPORTS"


@pytest.fixture(scope="module")
def fixture_home(tmp_path_factory):
    """The fixture home, written once (about 2 s: its Data Docs run GX) and copied per test."""
    home = tmp_path_factory.mktemp("portal_fixture") / "home"
    build_fixture(home)
    return home


@pytest.fixture
def portal_world(tmp_path, fixture_home):
    shutil.copytree(fixture_home, tmp_path / "home", symlinks=True)
    settings = load_settings(home=tmp_path / "home")
    add_user(settings, MARKETER, MARKETER_PW, "marketer")
    add_user(settings, ADMIN, ADMIN_PW, "admin")
    (tmp_path / "home" / "secret.txt").write_text(SECRET)
    return settings


@pytest.fixture
def portal_client(portal_world):
    with TestClient(create_app(portal_world), follow_redirects=False) as client:
        yield client


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, user=MARKETER, password=MARKETER_PW):
    token = _csrf(client.get("/login").text)
    return client.post("/login", data={"username": user, "password": password,
                                       "csrf_token": token, "next": "/"})


@pytest.fixture
def marketer(portal_client):
    assert login(portal_client).status_code == 303
    return portal_client


# --- authentication -----------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/exports/2026-01-06", "/segments/vip", "/preview",
                                  "/preview/email?segment=vip&row=0", "/ab", "/quality",
                                  "/quality/docs/index.html", "/models",
                                  "/exports/2026-01-06/files/segments/vip.csv",
                                  "/exports/2026-01-06/download.zip"])
def test_every_page_requires_login(portal_client, path):
    r = portal_client.get(path)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=")
    assert "example.com" not in r.text


def test_wrong_password_and_unknown_user_are_refused(portal_client):
    for user, pw in ((MARKETER, "wrong-password"), ("nobody", MARKETER_PW)):
        r = login(portal_client, user, pw)
        assert r.status_code == 401
        assert "Wrong user name or password" in r.text
    assert portal_client.get("/").status_code == 303  # still not signed in


def test_login_and_logout_need_the_csrf_token(portal_client):
    portal_client.get("/login")
    base = {"username": MARKETER, "password": MARKETER_PW, "next": "/"}
    assert portal_client.post("/login", data=base).status_code == 403
    assert portal_client.post("/login", data={**base, "csrf_token": "forged"}).status_code == 403
    assert portal_client.get("/").status_code == 303
    assert login(portal_client).status_code == 303
    page = portal_client.get("/")
    assert page.status_code == 200
    assert portal_client.post("/logout", data={}).status_code == 403
    assert portal_client.post("/logout", data={"csrf_token": _csrf(page.text)}).status_code == 303
    assert portal_client.get("/").status_code == 303


def _login_next(client, next_value):
    token = _csrf(client.get("/login").text)
    return client.post("/login", data={"username": MARKETER, "password": MARKETER_PW,
                                       "csrf_token": token, "next": next_value})


@pytest.mark.parametrize("evil", ["//evil.example/x", "/\\evil.example", "https://evil.example",
                                  "/\t/evil.example", "/\n/evil.example", "evil.example"])
def test_login_redirects_only_to_local_paths(portal_client, evil):
    assert _login_next(portal_client, evil).headers["location"] == "/"


def test_login_keeps_next_with_its_query_string(portal_client):
    r = portal_client.get("/preview?segment=vip&row=1")
    assert r.headers["location"] == "/login?next=/preview%3Fsegment%3Dvip%26row%3D1"
    form = portal_client.get(r.headers["location"]).text
    assert 'name="next" value="/preview?segment=vip&amp;row=1"' in form
    back = _login_next(portal_client, "/preview?segment=vip&row=1")
    assert back.headers["location"] == "/preview?segment=vip&row=1"


def test_logout_ends_the_session_on_the_server(portal_world):
    with TestClient(create_app(portal_world), follow_redirects=False) as client:
        login(client)
        saved = dict(client.cookies)
        page = client.get("/")
        assert page.status_code == 200
        assert client.post("/logout", data={"csrf_token": _csrf(page.text)}).status_code == 303
    # A copy of the cookie taken before signing out is worth nothing afterwards.
    with TestClient(create_app(portal_world), cookies=saved, follow_redirects=False) as thief:
        assert thief.get("/").status_code == 303
        assert thief.get("/exports/2026-01-06/mailable/vip.csv").status_code == 303


def test_throttle_stops_the_guesser_not_the_real_user(portal_world):
    app = create_app(portal_world)
    with TestClient(app, client=("203.0.113.9", 1), follow_redirects=False) as guesser:
        for _ in range(10):
            assert login(guesser, MARKETER, "wrong-password").status_code == 401
        assert login(guesser, MARKETER, "wrong-password").status_code == 429
        assert login(guesser, MARKETER, MARKETER_PW).status_code == 429  # no oracle while throttled
        assert login(guesser, ADMIN, ADMIN_PW).status_code == 303  # another user is unaffected
    with TestClient(app, client=("198.51.100.7", 1), follow_redirects=False) as real_user:
        assert login(real_user).status_code == 303


def test_failed_login_store_is_pruned(portal_world, monkeypatch):
    from personalization.portal import sessions

    store = sessions.SessionStore(portal_world.home / "s.sqlite", max_age_s=100, window_s=10)
    now = [1_000.0]
    monkeypatch.setattr(sessions.time, "time", lambda: now[0])
    store.record_failure("a", "b")
    sid = store.start("marketer")
    assert store.counts() == (1, 2) and store.user_of(sid) == "marketer"
    now[0] += 11  # past the failure window
    store.record_failure("c")
    assert store.counts() == (1, 1) and store.failures("a", "c") == [0, 1]
    now[0] += 100  # past the session lifetime
    assert store.user_of(sid) is None
    store.start("marketer")
    assert store.counts() == (1, 0)


def test_session_cookie_flags(portal_world, tmp_path):
    with TestClient(create_app(portal_world), follow_redirects=False) as client:
        cookie = login(client).headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    secure = load_settings(home=portal_world.home, portal_https_only=True)
    with TestClient(create_app(secure), base_url="https://testserver",
                    follow_redirects=False) as client:
        assert "secure" in login(client).headers["set-cookie"].lower()


def test_users_file_holds_salted_hashes_only(portal_world):
    text = users_path(portal_world).read_text()
    assert MARKETER_PW not in text and ADMIN_PW not in text
    assert text.count("scrypt$") == 2
    assert stat.S_IMODE(os.stat(users_path(portal_world)).st_mode) == 0o600
    assert authenticate(portal_world, MARKETER, MARKETER_PW).role == "marketer"
    assert authenticate(portal_world, ADMIN, ADMIN_PW).is_admin


def test_demo_login_is_created_once(tmp_path):
    settings = load_settings(home=tmp_path)
    user, password = demo_login(settings)
    assert (user, password) == demo_login(settings)
    assert authenticate(settings, user, password).role == "marketer"
    path = tmp_path / "portal_demo_login.txt"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    create_app(settings)
    assert stat.S_IMODE(os.stat(tmp_path / "portal_secret").st_mode) == 0o600


def test_header_mode_trusts_the_proxy_header(portal_world):
    settings = load_settings(home=portal_world.home, portal_auth="header")
    with TestClient(create_app(settings), follow_redirects=False) as client:
        assert client.get("/").status_code == 401
        r = client.get("/", headers={"X-Forwarded-User": "sso.user"})
        assert r.status_code == 200 and "sso.user" in r.text and "marketer" in r.text
        # Roles still come from the users file; others are read-only.
        page = client.get("/exports/2026-01-06", headers={"X-Forwarded-User": ADMIN})
        assert "Rerun export" in page.text
        denied = client.post("/admin/rerun-export", headers={"X-Forwarded-User": "sso.user"},
                             data={"ds": "2026-01-06", "csrf_token": _csrf(page.text)})
        assert denied.status_code == 403


# --- roles --------------------------------------------------------------------------------

def test_marketers_cannot_trigger_runs_admins_can(portal_world):
    calls = []
    done = threading.Event()

    def fake_rerun(ds, settings):
        calls.append(ds.isoformat())
        done.set()

    with TestClient(create_app(portal_world, rerun_export=fake_rerun), follow_redirects=False) as c:
        login(c)
        token = _csrf(c.get("/exports/2026-01-06").text)
        assert "Rerun export" not in c.get("/exports/2026-01-06").text
        r = c.post("/admin/rerun-export", data={"ds": "2026-01-06", "csrf_token": token})
        assert r.status_code == 403
    with TestClient(create_app(portal_world, rerun_export=fake_rerun), follow_redirects=False) as c:
        login(c, ADMIN, ADMIN_PW)
        token = _csrf(c.get("/exports/2026-01-06").text)
        assert c.post("/admin/rerun-export", data={"ds": "2026-01-06"}).status_code == 403
        r = c.post("/admin/rerun-export", data={"ds": "2026-01-06", "csrf_token": token})
        assert r.status_code == 303
        assert done.wait(5)
    assert calls == ["2026-01-06"]


def test_admin_rerun_checks_the_date_and_runs_one_at_a_time(portal_world):
    release, started, calls = threading.Event(), threading.Event(), []

    def slow_rerun(ds, settings):
        calls.append(ds.isoformat())
        started.set()
        release.wait(10)

    with TestClient(create_app(portal_world, rerun_export=slow_rerun), follow_redirects=False) as c:
        login(c, ADMIN, ADMIN_PW)
        token = _csrf(c.get("/exports/2026-01-06").text)
        for bad in ("2099-01-01", "2026-01-07", "yesterday", "2026-02-30"):
            r = c.post("/admin/rerun-export", data={"ds": bad, "csrf_token": token})
            assert r.status_code == 422 and "<html" in r.text, bad
        assert c.post("/admin/rerun-export", data={"ds": "2026-01-06", "csrf_token": token}).status_code == 303
        assert started.wait(5)
        busy = c.post("/admin/rerun-export", data={"ds": "2026-01-05", "csrf_token": token})
        assert busy.status_code == 409 and "already running" in busy.text
        release.set()
        for _ in range(100):  # the lock is released when the background run ends
            r = c.post("/admin/rerun-export", data={"ds": "2026-01-05", "csrf_token": token})
            if r.status_code == 303:
                break
            threading.Event().wait(0.05)
        assert r.status_code == 303
    assert calls[:2] == ["2026-01-06", "2026-01-05"]


# --- exports and downloads ----------------------------------------------------------------

def test_exports_list_shows_dates_status_and_counts(marketer):
    page = marketer.get("/").text
    for ds in DATES:
        assert f'href="/exports/{ds}"' in page
    assert "2026-01-07" not in page  # work in progress folder is ignored
    assert 'class="badge warning"' in page and 'class="badge passed"' in page
    assert "/exports/2026-01-06/mailable/cart_abandoners.csv" in page
    assert "/exports/2026-01-06/download.zip" in page
    # People, not rows: u01-u14 are in a segment on 2026-01-06 (16 segment rows: u01 and u06
    # are in both), and u11, u12 are the holdout: 12 people can be mailed.
    people = re.findall(r'<td class="num people"[^>]*>([\d,]+)</td>', page)
    assert people[0] == "12"
    assert '<strong id="mailable-people">12</strong>' in page and "14 with the holdout" in page


def test_what_changed_shows_sizes_moves_and_percentages(marketer):
    page = marketer.get("/").text
    table = re.search(r'<table class="grid compact" id="changes">(.*?)</table>', page, re.S).group(1)
    rows = {}
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]:
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        rows[cells[0]] = cells[1:6]
    # cart_abandoners: 10 -> 12 rows, u11 and u12 entered, nobody left: +20 %.
    assert rows["cart_abandoners"] == ["10", "12", "+2", "−0", "+20.0 %"]
    assert rows["vip"] == ["4", "4", "+0", "−0", "+0.0 %"]
    assert rows["winback"][:2] == ["0", "0"] and rows["winback"][4] == "–"


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_default_segment_download_is_mailable_without_holdout(marketer):
    # The download offered per segment is the mailable list: uploading the full file would
    # mail the holdout (u11, u12) and destroy the experiment.
    page = marketer.get("/").text
    chips = re.findall(r'<a class="chip[^"]*" href="([^"]+)"', page)
    assert "/exports/2026-01-06/mailable/cart_abandoners.csv" in chips
    assert not [c for c in chips if "/files/" in c]
    r = marketer.get("/exports/2026-01-06/mailable/cart_abandoners.csv")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    rows = _csv_rows(r.text)
    assert [row["email"] for row in rows] == [email_of(f"u{n:02d}") for n in range(1, 11)]
    # Only what an ESP import needs: email, merge tags, segment columns, the variant.
    assert list(rows[0])[:3] == ["email", "FNAME", "LNAME"] and list(rows[0])[-1] == "VARIANT"
    assert not {"unified_id", "FALLBACKS", "is_holdout", "variant"} & set(rows[0])
    assert [row["VARIANT"] for row in rows] == ["A"] * 5 + ["B"] * 5
    assert rows[3]["LNAME"] == "'-Smith"  # spreadsheet-safe like every CSV for people
    # The full file stays available, labelled as such.
    full = marketer.get("/exports/2026-01-06/files/segments/cart_abandoners.csv").text
    assert email_of("u11") in full and email_of("u12") in full
    detail = marketer.get("/exports/2026-01-06").text
    assert "full CSV (incl. holdout)" in detail and "INCLUDING the holdout" in detail
    assert "mailable CSV" in detail


@pytest.mark.parametrize("preset, header", [
    ("mailchimp", ["Email Address", "First Name", "Last Name", "CITY"]),
    ("klaviyo", ["Email", "First Name", "Last Name", "City", "Country"]),
    ("sendgrid", ["email", "first_name", "last_name", "city", "country"]),
])
def test_mailable_presets_rename_the_columns_only(marketer, preset, header):
    plain = marketer.get("/exports/2026-01-06/mailable/cart_abandoners.csv").text
    r = marketer.get(f"/exports/2026-01-06/mailable/cart_abandoners.csv?preset={preset}")
    assert r.status_code == 200 and f"_mailable_{preset}.csv" in r.headers["content-disposition"]
    first, _, rest = r.text.partition("\n")
    assert first.split(",")[:len(header)] == header
    assert rest == plain.partition("\n")[2]  # same rows, byte for byte


def test_unknown_preset_or_segment_gives_a_clear_error(marketer):
    r = marketer.get("/exports/2026-01-06/mailable/cart_abandoners.csv?preset=nope")
    assert r.status_code == 422 and "mailchimp" in r.text
    assert marketer.get("/exports/2026-01-06/mailable/nope.csv").status_code == 404


def test_csv_download_is_the_exported_file(marketer, portal_world):
    r = marketer.get("/exports/2026-01-06/files/segments/cart_abandoners.csv")
    assert r.status_code == 200
    path = portal_world.exports_dir / "2026-01-06" / "segments" / "cart_abandoners.csv"
    assert r.content == path.read_bytes()
    assert "'-Smith" in r.text  # spreadsheet-safe cell as written by the export
    assert "attachment" in r.headers["content-disposition"]
    latest = marketer.get("/exports/latest/files/segments/vip.csv")
    assert latest.status_code == 200


def test_path_traversal_and_unlisted_files_are_refused(marketer, portal_world):
    export = portal_world.exports_dir / "2026-01-06"
    (export / "segments" / "leak.csv").symlink_to(portal_world.home / "secret.txt")
    manifest = (export / "manifest.json").read_text()
    # Even a manifest that lists the link must not open it: the path check comes first.
    (export / "manifest.json").write_text(manifest.replace(
        '"files": {', '"files": {"leak": {"path": "segments/leak.csv"}, ', 1))
    attempts = [
        "/exports/2026-01-06/files/..%2F..%2Fsecret.txt",
        "/exports/2026-01-06/files/%2e%2e/%2e%2e/secret.txt",
        "/exports/2026-01-06/files/segments/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "/exports/2026-01-06/files/%2Fetc%2Fpasswd",
        "/exports/%2e%2e/files/secret.txt",
        "/exports/..%2F..%2Fhome/files/secret.txt",
        "/exports/2026-01-06/files/segments/leak.csv",
        "/exports/2026-01-06/files/erasures.csv",
        "/exports/2026-01-07/files/segments/vip.csv",
        "/quality/docs/..%2F..%2Fsecret.txt",
        "/quality/docs/%2e%2e/%2e%2e/secret.txt",
    ]
    for url in attempts:
        r = marketer.get(url)
        assert r.status_code == 404, url
        assert SECRET not in r.text
    assert safe_child(export, "../../secret.txt") is None
    assert safe_child(export, str(portal_world.home / "secret.txt")) is None
    assert safe_child(export, "segments/leak.csv") is None
    assert safe_child(export, "segments/vip.csv") is not None


def test_zip_download_holds_the_export_files(marketer, portal_world):
    r = marketer.get("/exports/2026-01-06/download.zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    names = set(archive.namelist())
    assert "manifest.json" in names and "segments/vip.parquet" in names
    assert "deltas/cart_abandoners.added.csv" in names
    assert "erasures.csv" not in names  # for the ESP sync, not for marketers
    root = portal_world.exports_dir / "2026-01-06"
    for name in names:
        assert archive.read(name) == (root / name).read_bytes(), name
    assert archive.testzip() is None


# --- segment page -------------------------------------------------------------------------

def test_segment_page_has_definition_chart_and_masked_sample(marketer):
    page = marketer.get("/segments/cart_abandoners").text
    # The dbt variable in the description is shown as its value (dbt_project.yml: 3).
    assert "Added to cart in the last 3 days" in page and "var(" not in page
    assert "var(" not in marketer.get("/segments").text
    assert page.count("<svg") == 2
    polyline = re.search(r'<polyline class="series" fill="none" points="([^"]+)"', page).group(1)
    assert len(polyline.split()) == 3  # one point per export date
    assert "+2" in page  # entered on 2026-01-05 and 2026-01-06
    assert "a***@example.com" in page
    for n in range(1, 13):
        assert email_of(f"u{n:02d}") not in page
    assert marketer.get("/segments/nope").status_code == 404


def test_empty_segment_says_why_and_where_to_go(marketer):
    for url in ("/segments/winback", "/preview?segment=winback"):
        r = marketer.get(url)
        assert r.status_code == 200
        box = re.search(r'<section class="card empty" id="empty-segment">(.*?)</section>', r.text, re.S)
        assert box, url
        assert "3 people matched, but none may be emailed" in box.group(1)
        assert "not opted in 3" in box.group(1) and 'href="/segments"' in box.group(1)


def test_segment_that_matched_nobody_says_so(marketer, portal_world):
    path = portal_world.exports_dir / "2026-01-06" / "manifest.json"
    manifest = json.loads(path.read_text())
    for seg in manifest["segments"]:
        if seg["name"] == "winback":
            seg.update(members=0, excluded={})
    path.write_text(json.dumps(manifest))
    page = marketer.get("/segments/winback").text
    assert "Nobody matched the segment's definition" in page
    assert "Lapsed customers to win back." in page and "(crm)" in page


# --- email preview ------------------------------------------------------------------------

def test_preview_shows_fallbacks_and_never_puts_emails_in_urls(marketer):
    page = marketer.get("/preview?segment=cart_abandoners&uid=u03").text
    fired = re.search(r'<p id="fallbacks">(.*?)</p>', page, re.S).group(1)
    for tag in ("FNAME", "RECO_2", "RECO_3"):
        assert tag in fired
    assert email_of("u03") not in page
    assert not any("@" in href for href in re.findall(r'(?:href|src)="([^"]+)"', page))
    email = marketer.get("/preview/email?segment=cart_abandoners&uid=u03")
    assert email.status_code == 200
    assert "default-src 'none'" in email.headers["content-security-policy"]
    # u03 speaks German (LANGUAGE de): German copy, the name's fallback highlighted.
    assert 'title="fallback: FNAME"' in email.text and "Hallo <span" in email.text
    assert "Sie haben etwas im Warenkorb vergessen" in email.text  # segment block
    assert "Abmelden" in email.text
    plain = marketer.get("/preview/email?segment=cart_abandoners&row=0").text
    assert "Hallo Anna," in plain and "fallback:" not in plain
    assert "kostenlosen Expressversand" in plain  # VIP block for u01
    assert "No fallback fired" in marketer.get("/preview?segment=vip&row=0").text
    assert marketer.get("/preview/email?segment=vip&uid=nobody").status_code == 404


def test_preview_speaks_the_contacts_language_with_subject_and_preheader(marketer):
    # u02 speaks French; the page shows the inbox line in the same language.
    page = marketer.get("/preview?segment=cart_abandoners&uid=u02").text
    assert '<strong id="copy-language">fr</strong>' in page
    assert '<div class="subject" id="subject">Ben, votre panier vous attend</div>' in page
    assert "Vos articles sont toujours dans votre panier." in page
    email = marketer.get("/preview/email?segment=cart_abandoners&uid=u02").text
    assert '<html lang="fr">' in email and "Bonjour Ben," in email and "Se désabonner" in email
    assert 'id="preheader">Vos articles sont toujours dans votre panier.<' in email
    # No name (the fallback fired): the subject leaves it out instead of "there, ...".
    anonymous = marketer.get("/preview?segment=cart_abandoners&uid=u03").text
    assert '<div class="subject" id="subject">Ihr Warenkorb wartet</div>' in anonymous
    # The narrow (mobile) view is the same email in a phone-width frame.
    mobile = marketer.get("/preview?segment=cart_abandoners&uid=u02&view=mobile").text
    assert 'class="email mobile"' in mobile and 'name="view" value="mobile"' in mobile
    assert marketer.get("/preview?segment=vip&view=tablet").status_code == 422


def test_email_copy_falls_back_to_english_and_escapes_values():
    from personalization.portal.emails import email_copy, inbox_line, render_email

    assert {"en", "de", "fr", "nl", "es"} <= set(email_copy())
    italian = {"FNAME": "<b>Gia</b>", "LANGUAGE": "it", "LIFECYCLE": "prospect",
               "LOCAL_OFFER": "Free delivery", "BECAUSE_VIEWED": "", "FALLBACKS": ""}
    html = render_email(italian, "vip")
    assert "Hi &lt;b&gt;Gia&lt;/b&gt;," in html and "<b>Gia</b>" not in html
    assert "WELCOME10" in html and "Early access for you" in html
    assert 'data-tag="LOCAL_OFFER"' in html and 'data-tag="BECAUSE_VIEWED"' not in html
    assert inbox_line(italian, "vip")["subject"] == "<b>Gia</b>, early access for you"


# --- A/B results --------------------------------------------------------------------------

def test_two_proportion_z_test_matches_hand_computation():
    assert normal_cdf(0) == pytest.approx(0.5)
    assert normal_cdf(1.959964) == pytest.approx(0.975, abs=1e-6)
    # 20/100 vs 30/100: pooled 0.25, se = sqrt(.25*.75*(2/100)) = 0.061237, z = 1.63299
    z, p = two_proportion_z_test(20, 100, 30, 100)
    assert z == pytest.approx(1.632993, abs=1e-5)
    assert p == pytest.approx(0.102470, abs=1e-5)
    assert two_proportion_z_test(0, 10, 0, 10) == (None, None)


def test_ab_results_on_hand_made_responses(portal_world):
    results = {c.campaign_id: c for c in campaign_results(portal_world, load_export(portal_world, "latest"))}
    c = results["cmp-cart"]
    assert (c.segment, c.basis) == ("cart_abandoners", "recipients")
    a, b = c.variants
    # Recipients: non-holdout rows per variant in the latest export (u01-u05 A, u06-u10 B).
    assert (a.variant, a.base, a.opens, a.clicks, a.conversions) == ("A", 5, 4, 2, 1)
    # u06 buys via its shop account, u07 via the cookie of its click, u08 bought before it.
    assert (b.variant, b.base, b.opens, b.clicks, b.conversions) == ("B", 5, 5, 4, 2)
    assert a.is_control and a.conversion_p is None
    # clicks 2/5 vs 4/5: lift +100 %; pooled 0.6, se = sqrt(.6*.4*.4) = .309839,
    # z = 1.290994, p = 2 * (1 - Phi(z)) = 0.196706
    assert b.click_lift == pytest.approx(1.0)
    assert b.click_p == pytest.approx(0.196706, abs=1e-5)
    # conversions 1/5 vs 2/5: lift +100 %; pooled .3, se = sqrt(.3*.7*.4) = .289828,
    # z = 0.690066, p = 0.490153
    assert b.conversion_lift == pytest.approx(1.0)
    assert b.conversion_p == pytest.approx(0.490153, abs=1e-5)
    # Wilson 95 % for 2/5: centre (.4 + z²/10) / (1 + z²/5) = .443449,
    # half z*sqrt(.048 + z²/100) / (1 + z²/5) = .325828 (z² = 3.841459).
    assert a.click_ci == pytest.approx((0.117621, 0.769277), abs=1e-5)
    # Difference of click rates .4 ± 1.959964 * sqrt(.048 + .032) = .4 ± .554362.
    assert b.click_diff_ci == pytest.approx((-0.154362, 0.954362), abs=1e-5)
    # Not significant: people per arm for .4 vs .8 at 80 % power, 5 % two-sided:
    # (1.959964*sqrt(2*.6*.4) + 0.841621*sqrt(.24+.16))² / .16 = 22.33 -> 23, 18 more than 5.
    assert b.click_verdict == "no difference yet, need ~18 more per arm"
    # .2 vs .4: (1.959964*sqrt(2*.3*.7) + 0.841621*sqrt(.16+.24))² / .04 = 81.22 -> 82, 77 more.
    assert b.conversion_verdict == "no difference yet, need ~77 more per arm"
    base = {x.group: (x.members, x.buyers) for x in c.baselines}
    # Holdout u11 bought (shop account c11), u12 did not; treated buyers u01, u06, u07, u08.
    assert base == {"holdout": (2, 1), "treated": (10, 4), "variant A": (5, 1),
                    "variant B": (5, 3)}
    lifts = {x.group: x.lift for x in c.baselines}
    # Purchase rate vs the holdout's .5: treated .4 -> -20 %, A .2 -> -60 %, B .6 -> +20 %.
    assert lifts["treated"] == pytest.approx(-0.2) and lifts["variant B"] == pytest.approx(0.2)
    assert lifts["variant A"] == pytest.approx(-0.6) and lifts["holdout"] is None


def test_campaign_without_segment_is_compared_with_the_export_it_was_sent_from(portal_world):
    results = {c.campaign_id: c for c in campaign_results(portal_world, load_export(portal_world, "latest"))}
    news = results["cmp-news"]
    assert (news.segment, news.basis) == (None, "openers")
    # Its first event is on 2026-01-06: the export in force was 2026-01-05 (u01-u10, u13,
    # u14: nobody in the holdout yet), not the latest one. Buyers in [01-06 09:00, 01-13
    # 10:00]: u01 only (u11's purchase counts for nobody here: u11 was not exported yet).
    assert {x.group: (x.members, x.buyers) for x in news.baselines} == {"treated": (12, 1)}
    assert "2026-01-05" in news.baseline_scope and "store-wide" in news.baseline_scope


def test_ab_results_filter_campaign_events_by_date(portal_world):
    latest = load_export(portal_world, "latest")
    ids = lambda **kw: [c.campaign_id for c in campaign_results(portal_world, latest, **kw)]  # noqa: E731
    assert ids() == ["cmp-news", "cmp-cart"]
    assert ids(since=date(2026, 1, 6)) == ["cmp-news"]
    assert ids(until=date(2026, 1, 5)) == ["cmp-cart"]
    assert ids(since=date(2026, 1, 7)) == []


def test_sample_size_and_verdicts_by_hand():
    # .10 vs .12: pooled .11; (1.959964*sqrt(.1958) + 0.841621*sqrt(.09+.1056))² / .0004
    # = (0.867270 + 0.372222)² / .0004 = 3840.85 -> 3841 per arm.
    assert sample_size_per_arm(0.10, 0.12) == 3841
    assert verdict("B", "A", 100, 1000, 160, 1000, 0.0003) == "B wins"
    assert verdict("B", "A", 160, 1000, 100, 1000, 0.0003) == "A wins"
    assert verdict("B", "A", 0, 10, 0, 10, None) == "no difference yet (no events in either arm)"
    assert verdict("B", "A", 0, 0, 1, 10, None) == "not enough data yet"
    assert "to see a 10% lift" in verdict("B", "A", 10, 100, 10, 100, 1.0)


def test_ab_page_renders(marketer):
    page = marketer.get("/ab").text
    assert "cmp-cart" in page and "+100.0 %" in page and "0.197" in page and "0.490" in page
    assert "no difference yet, need ~18 more per arm" in page
    assert "[11.8 %, 76.9 %]" in page  # click rate of A with its 95 % interval
    assert re.search(r"holdout</td>\s*<td[^>]*>2</td>\s*<td[^>]*>1</td>\s*<td[^>]*>50.00 %", page)
    assert "cmp-news" in page and "store-wide" in page
    only_news = marketer.get("/ab?since=2026-01-06").text
    assert "cmp-news" in only_news and "cmp-cart" not in only_news
    assert marketer.get("/ab?since=yesterday").status_code == 422


# --- quality, models, logs ----------------------------------------------------------------

def test_data_docs_and_model_cards(marketer):
    assert "Data Docs fixture" in marketer.get("/quality/docs/index.html").text
    assert "warning" in marketer.get("/quality").text
    models = marketer.get("/models").text
    assert "vip-v1" in models and "approved" in models
    trained = re.search(r'<td class="trained-on">(.*?)</td>', models, re.S).group(1)
    assert "2026-01-04" in trained and "1,234 rows" in trained
    card = marketer.get("/models/vip/vip-v1").text
    assert "<h1>VIP model vip-v1</h1>" in card and "<td>roc_auc</td>" in card
    assert "<script>alert" not in card and "&lt;script&gt;" in card
    assert marketer.get("/models/vip/..%2F..%2Fsecret").status_code == 404


def test_data_docs_are_served_offline_with_their_tables_filled(marketer, portal_world):
    from fixtures_portal.build import write_real_data_docs

    write_real_data_docs(portal_world.quality_dir / "data_docs")  # real GX output
    r = marketer.get("/quality/docs/index.html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'none'" in csp and "http" not in csp
    page = r.text
    assert "<script" not in page.lower() and "/static/datadocs.css" in page
    # Nothing is loaded from another host (plain hyperlinks to GX's site may stay).
    assert not re.search(r'src="https?://|<link[^>]+href="https?://|url\([\'"]?https?://', page)
    rows = re.findall(r'<tr><td><span class="badge (passed|failed)">', page)
    assert sorted(rows) == ["failed", "passed"]  # the validation table is filled
    links = re.findall(r'<a href="(validations/[^"]+)">open</a>', page)
    assert len(links) == 2
    detail = marketer.get("/quality/docs/" + links[0])
    assert detail.status_code == 200 and "<script" not in detail.text.lower()
    assert "fixture." in detail.text and " onclick=" not in detail.text


def test_logs_hold_no_email_addresses(marketer, caplog):
    caplog.set_level(logging.INFO)
    marketer.get("/segments/cart_abandoners")
    marketer.get("/preview?segment=cart_abandoners&uid=u03")
    marketer.get("/preview/email?segment=cart_abandoners&row=1")
    marketer.get("/exports/2026-01-06/files/segments/vip.csv")
    marketer.get(f"/preview?segment=vip&uid={email_of('u01')}")  # even if someone types one
    login(marketer, email_of("u02"), "wrong-password")
    # The server's records (the test client's own httpx log shows the URL it was asked for).
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("personalization"))
    assert "portal_request" in text
    for n in range(1, 15):
        assert email_of(f"u{n:02d}") not in text


def test_unusual_moves_are_judged_against_the_segments_own_history(portal_world):
    from personalization.portal.changes import unusual

    steady = [100, 102, 98, 101, 99, 100]  # day-to-day moves within about ±2-4 %
    assert "unusual for this segment: +80%" in unusual(steady, 180, portal_world)
    assert unusual(steady, 103, portal_world) is None
    # Too little history: the quality gate's band (±50 % from 20 rows up) decides.
    assert "large move: -60%" in unusual([100], 40, portal_world)
    assert unusual([10], 1, portal_world) is None  # too small to judge
    assert unusual([100] * 7, 101, portal_world) is None  # never moved, moved a little
    assert "large move" in unusual([100] * 7, 200, portal_world)
    assert unusual([50], 0, portal_world) == "emptied: was 50, now 0"
    assert unusual([], 5, portal_world) is None


def test_descriptions_lose_their_dbt_jinja():
    from personalization.portal.text import plain_description

    variables = {"cart_abandoners_days": 5, "confidence_threshold": 0.8}
    # The project's value wins over the default written in brackets.
    assert plain_description("in the last var('cart_abandoners_days') (3) days", variables) == \
        "in the last 5 days"
    assert plain_description("above {{ var(\"confidence_threshold\") }} from {{ ref('orders') }}",
                             variables) == "above 0.8 from orders"
    assert plain_description("var('unknown', 7) or var('nope') (2)", {}) == "7 or 2"
    assert plain_description(None, variables) == ""


def test_helpers():
    assert mask_email("jane.doe@example.com") == "j***@example.com"
    assert mask_email(None) == ""
    assert "<svg" in line_chart([("2026-01-01", 3), ("2026-01-02", 5)], "t")
    assert delta_chart([("2026-01-01", 2, 1)], "t").count("<rect") == 2
    md = render_markdown("# T\n\n- a\n- **b**\n\n1. x\n\ntext `c` <script>x</script>"
                         "\n\n[l](javascript:alert(1))").replace("\n", "")
    assert "<ul><li>a</li><li><strong>b</strong></li></ul>" in md and "<ol>" in md
    assert "<code>c</code>" in md and "<script>" not in md and "&lt;script&gt;" in md
    assert "href=" not in md  # a javascript: link stays text

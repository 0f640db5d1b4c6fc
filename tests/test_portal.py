"""Marketer portal routes on a hand-made fixture export (FastAPI TestClient, real files)."""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import stat
import threading
import zipfile

import pytest
from fastapi.testclient import TestClient
from fixtures_portal.build import DATES, email_of, sha_file
from fixtures_portal.build import build as build_fixture

from personalization.config import load_settings
from personalization.portal import add_user, create_app, demo_login
from personalization.portal.abtest import campaign_results, normal_cdf, two_proportion_z_test
from personalization.portal.charts import delta_chart, line_chart
from personalization.portal.markdown import render as render_markdown
from personalization.portal.security import mask_email, safe_child
from personalization.portal.store import load_export
from personalization.portal.users import authenticate, users_path

MARKETER, MARKETER_PW = "marketer", "correct-horse-1"
ADMIN, ADMIN_PW = "boss", "admin-pass-123"
SECRET = "TOP-SECRET-OUTSIDE-EXPORTS"


@pytest.fixture
def portal_world(tmp_path):
    settings = build_fixture(tmp_path / "home")
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


def test_login_redirects_only_to_local_paths(portal_client):
    token = _csrf(portal_client.get("/login").text)
    r = portal_client.post("/login", data={"username": MARKETER, "password": MARKETER_PW,
                                           "csrf_token": token, "next": "//evil.example/x"})
    assert r.headers["location"] == "/"


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


# --- exports and downloads ----------------------------------------------------------------

def test_exports_list_shows_dates_status_and_counts(marketer):
    page = marketer.get("/").text
    for ds in DATES:
        assert f'href="/exports/{ds}"' in page
    assert "2026-01-07" not in page  # work in progress folder is ignored
    assert 'class="badge warning"' in page and 'class="badge passed"' in page
    assert "/exports/2026-01-06/mailable/cart_abandoners.csv" in page
    assert "/exports/2026-01-06/download.zip" in page
    assert ">16<" in page  # 12 cart_abandoners + 4 vip rows on 2026-01-06


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
    assert "Added to cart in the last 3 days" in page
    assert page.count("<svg") == 2
    polyline = re.search(r'<polyline class="series" fill="none" points="([^"]+)"', page).group(1)
    assert len(polyline.split()) == 3  # one point per export date
    assert "+2" in page  # entered on 2026-01-05 and 2026-01-06
    assert "a***@example.com" in page
    for n in range(1, 13):
        assert email_of(f"u{n:02d}") not in page
    assert marketer.get("/segments/nope").status_code == 404


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
    assert 'title="fallback: FNAME"' in email.text and "Hi <span" in email.text
    assert "You left something in your cart" in email.text  # segment block
    assert "Unsubscribe" in email.text
    plain = marketer.get("/preview/email?segment=cart_abandoners&row=0").text
    assert "Hi Anna," in plain and "fallback:" not in plain
    assert "free express shipping" in plain  # VIP block for u01
    assert "No fallback fired" in marketer.get("/preview?segment=vip&row=0").text
    assert marketer.get("/preview/email?segment=vip&uid=nobody").status_code == 404


# --- A/B results --------------------------------------------------------------------------

def test_two_proportion_z_test_matches_hand_computation():
    assert normal_cdf(0) == pytest.approx(0.5)
    assert normal_cdf(1.959964) == pytest.approx(0.975, abs=1e-6)
    # 20/100 vs 30/100: pooled 0.25, se = sqrt(.25*.75*(2/100)) = 0.061237, z = 1.63299
    z, p = two_proportion_z_test(20, 100, 30, 100)
    assert z == pytest.approx(1.632993, abs=1e-5)
    assert p == pytest.approx(0.102470, abs=1e-5)
    assert two_proportion_z_test(0, 10, 0, 10) == (None, None)


def test_ab_results_on_hand_made_events(portal_world):
    [c] = campaign_results(portal_world, load_export(portal_world, "latest"))
    assert (c.campaign_id, c.segment, c.basis) == ("cmp-cart", "cart_abandoners", "recipients")
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
    base = {x.group: (x.members, x.buyers) for x in c.baselines}
    # Holdout u11 bought (shop account c11), u12 did not; treated buyers u01, u06, u07, u08.
    assert base == {"holdout": (2, 1), "treated": (10, 4)}


def test_ab_page_renders(marketer):
    page = marketer.get("/ab").text
    assert "cmp-cart" in page and "+100.0 %" in page and "0.197" in page and "0.490" in page
    assert "holdout</strong> 50.00 %" in page


# --- quality, models, logs ----------------------------------------------------------------

def test_data_docs_and_model_cards(marketer):
    assert "Data Docs fixture" in marketer.get("/quality/docs/index.html").text
    assert "warning" in marketer.get("/quality").text
    assert "vip-v1" in marketer.get("/models").text
    card = marketer.get("/models/vip/vip-v1").text
    assert "<h1>VIP model vip-v1</h1>" in card and "<td>roc_auc</td>" in card
    assert "<script>alert" not in card and "&lt;script&gt;" in card
    assert marketer.get("/models/vip/..%2F..%2Fsecret").status_code == 404


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


def test_helpers():
    assert mask_email("jane.doe@example.com") == "j***@example.com"
    assert mask_email(None) == ""
    assert "<svg" in line_chart([("2026-01-01", 3), ("2026-01-02", 5)], "t")
    assert delta_chart([("2026-01-01", 2, 1)], "t").count("<rect") == 2
    md = render_markdown("# T\n\n- a\n- **b**\n\n1. x\n\ntext `c`")
    assert "<ul><li>a</li><li><strong>b</strong></li></ul>" in md and "<ol>" in md
    assert "<code>c</code>" in md


def test_manifest_hashes_of_fixture_match(portal_world):
    export = load_export(portal_world, "2026-01-06")
    for seg in export.segments:
        for entry in seg["files"].values():
            assert sha_file(export.path / entry["path"]) == entry["sha256"]

"""The portal on what the real `publish()` writes (not the hand-made fixture).

The warehouse is the small hand-made one of tests/test_export.py (no dbt run); the export,
its manifest, mailable files and exclusion records come from the export code itself.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from datetime import datetime

import duckdb
import pytest
from fastapi.testclient import TestClient
from test_export import DAY1, DAY2, build_warehouse, export_home  # noqa: F401 - fixture

from personalization.export import publish
from personalization.portal import create_app
from personalization.portal.abtest import campaign_results
from personalization.portal.store import load_export

SEE = {"X-Forwarded-User": "marketer"}


@pytest.fixture
def real_portal(export_home):  # noqa: F811 - the fixture imported above
    """Exports of DAY1 and DAY2; on DAY2 u01 has left cart_abandoners."""
    publish(DAY1, export_home)
    build_warehouse(export_home, DAY2)
    with duckdb.connect(str(export_home.warehouse_path)) as con:
        con.execute("DELETE FROM cart_abandoners WHERE unified_id = 'u01'")
    publish(DAY2, export_home)
    settings = export_home.model_copy(update={"portal_auth": "header"})
    with TestClient(create_app(settings), headers=SEE, follow_redirects=False) as client:
        yield client


def _lookup(client, email: str) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/lookup").text).group(1)
    r = client.post("/lookup", data={"email": email, "csrf_token": token})
    assert r.status_code == 200
    return r.text


def _table(page: str, table_id: str) -> list[list[str]]:
    m = re.search(rf'<table[^>]*id="{table_id}">(.*?)</table>', page, re.S)
    if not m:
        return []
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
            for tr in re.findall(r"<tr>(.*?)</tr>", m.group(1), re.S)][1:]


def test_real_export_downloads_are_mailable_and_people_are_counted_once(real_portal):
    page = real_portal.get("/").text
    # DAY2: everyone holds u01, u02, u03 (u02 is in the 20 % holdout); cart_abandoners is
    # empty since u01 left: 2 people can be mailed, 3 with the holdout.
    assert '<strong id="mailable-people">2</strong>' in page and "3 with the holdout" in page
    text = real_portal.get("/exports/2026-01-06/mailable/everyone.csv?preset=sendgrid").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["email"] for r in rows] == ["anna@example.de", "marie@example.fr"]
    assert "john@example.com" in real_portal.get("/exports/2026-01-06/files/segments/everyone.csv").text


def test_lookup_tells_segments_left_and_why_excluded(real_portal, caplog):
    caplog.set_level(logging.INFO)
    anna = _lookup(real_portal, "  Anna@Example.DE ")  # matched exactly after trim + lower case
    assert "a***@example.de" in anna and "anna@example.de" not in anna.lower().replace("a***", "")
    assert _table(anna, "lookup-current") == [["everyone", "2026-01-05", _variant(real_portal), "yes"]]
    assert _table(anna, "lookup-left") == [["cart_abandoners", "2026-01-05", "2026-01-05", "2026-01-06"]]
    john = _lookup(real_portal, "john@example.com")
    assert ["everyone", "holdout: in the control group, kept in the full file but never mailed"] \
        in _table(john, "lookup-excluded")
    nora = _lookup(real_portal, "noconsent@example.com")
    assert _table(nora, "lookup-excluded") == [
        ["cart_abandoners", "no consent: never opted in to email"],
        ["everyone", "no consent: never opted in to email"]]
    bea = _lookup(real_portal, "bounce@example.com")
    assert _table(bea, "lookup-excluded") == [["everyone", "bounced at the ESP"]]
    uma = _lookup(real_portal, "unsub@example.com")
    assert ["everyone", "unsubscribed"] in _table(uma, "lookup-excluded")
    nobody = _lookup(real_portal, "nobody@example.com")
    assert 'id="lookup-none"' in nobody
    # The email is in no URL and no log line.
    assert real_portal.get("/lookup?email=x@example.com").status_code == 200  # GET ignores it
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("personalization"))
    for email in ("anna@example.de", "noconsent@example.com", "bounce@example.com", "x@example.com"):
        assert email not in logged.lower()
    assert "portal_lookup found=True" in logged


def _variant(client) -> str:
    text = client.get("/exports/2026-01-06/files/segments/everyone.csv").text
    return next(r["variant"] for r in csv.DictReader(io.StringIO(text)) if r["unified_id"] == "u01")


def test_lookup_needs_a_whole_email_and_the_form_token(real_portal):
    token = re.search(r'name="csrf_token" value="([^"]+)"', real_portal.get("/lookup").text).group(1)
    r = real_portal.post("/lookup", data={"email": "anna", "csrf_token": token})
    assert r.status_code == 422 and "whole email address" in r.text
    assert real_portal.post("/lookup", data={"email": "anna@example.de"}).status_code == 403


def test_preview_of_a_real_export_shows_the_content_blocks(real_portal):
    page = real_portal.get("/preview?segment=everyone&uid=u01").text
    fields = dict(re.findall(r'<td class="mono">\*\|(\w+)\|\*</td><td>(.*?)</td>', page))
    assert fields["LOCAL_OFFER"] == "Versand DE" and fields["SHIPPING_NUDGE"] == "Fast gratis"
    email = real_portal.get("/preview/email?segment=everyone&uid=u01").text
    assert '<html lang="de">' in email and "Hallo Anna," in email
    for block in ("Versand DE", "Weil Sie shoes ansahen", "Wir vermissen Sie", "Fast gratis"):
        assert block in email


def test_every_file_of_a_real_export_downloads_byte_for_byte_as_its_manifest_says(real_portal):
    manifest = real_portal.get("/exports/2026-01-06/files/manifest.json").json()
    entries = [e for seg in manifest["segments"] for e in seg["files"].values()]
    assert len(entries) == 2 * 6  # 2 segments x (full csv, parquet, mailable, 3 deltas)
    for entry in entries:
        body = real_portal.get(f"/exports/2026-01-06/files/{entry['path']}").content
        assert hashlib.sha256(body).hexdigest() == entry["sha256"], entry["path"]
    # The erasure list (plain emails, for the ESP sync only) is listed but never served.
    erasures = manifest["erasures"]["file"]["path"]
    assert real_portal.get(f"/exports/2026-01-06/files/{erasures}").status_code == 404


def test_ab_results_read_the_campaign_files_a_real_publish_wrote(export_home):  # noqa: F811
    """publish() copies the warehouse's campaign_responses mart and the purchase events since
    its first response into the export; the A/B page counts those, per unified_id."""
    with duckdb.connect(str(export_home.warehouse_path)) as con:
        con.execute("""
            CREATE TABLE campaign_responses AS SELECT * FROM (VALUES
              ('cmp', 'A', 'u01', DATE '2026-01-05', TIMESTAMP '2026-01-05 08:00',
               TIMESTAMP '2026-01-05 09:00', true, true, true),
              ('cmp', 'A', 'u02', DATE '2026-01-05', TIMESTAMP '2026-01-05 08:00',
               TIMESTAMP '2026-01-05 08:00', true, false, false),
              ('cmp', 'B', 'u03', DATE '2026-01-05', TIMESTAMP '2026-01-05 10:00',
               TIMESTAMP '2026-01-05 10:00', false, true, false))
            AS t(campaign_id, variant, unified_id, activity_on, first_event_at, last_event_at,
                 has_opened, has_clicked, has_converted)""")
        con.execute("""
            CREATE TABLE customer_events AS SELECT * FROM (VALUES
              ('u01', 'purchase', TIMESTAMP '2026-01-05 12:00'),
              ('u02', 'purchase', TIMESTAMP '2026-01-04 12:00'),
              ('u02', 'page_view', TIMESTAMP '2026-01-05 12:00'))
            AS t(unified_id, event_type, occurred_at)""")
    publish(DAY1, export_home)
    export = load_export(export_home, DAY1.isoformat())
    assert export.manifest["campaigns"]["responses"]["rows"] == 3
    # Only purchases since the first response (08:00 on the 5th) are published.
    assert export.manifest["campaigns"]["purchases"]["rows"] == 1
    (result,) = campaign_results(export_home, export)
    counts = {v.variant: (v.opens, v.clicks, v.conversions) for v in result.variants}
    assert counts == {"A": (2, 1, 1), "B": (0, 1, 0)}
    assert (result.first_event, result.last_event) == (
        datetime(2026, 1, 5, 8), datetime(2026, 1, 5, 10))

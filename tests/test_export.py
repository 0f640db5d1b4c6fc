"""Export: layout, manifest, merge fields, consent filter, deltas, A/B + holdout, atomicity.

A small warehouse is written directly with DuckDB (the contract columns, hand-made rows) and
a minimal dbt manifest lists the segments, so these tests need no dbt run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from datetime import date
from pathlib import Path

import duckdb
import pytest

from personalization.config import load_settings
from personalization.exceptions import ExportError, QualityGateError
from personalization.export import assignment, is_holdout, load_merge_fields, publish, suppress
from personalization.export import deltas as deltas_module
from personalization.export import files as files_module
from personalization.export import publisher as publish_module

DAY1 = date(2026, 1, 5)
DAY2 = date(2026, 1, 6)

PROFILE_COLUMNS = """
    unified_id VARCHAR, email VARCHAR, email_sha256 VARCHAR, first_name VARCHAR,
    last_name VARCHAR, phone VARCHAR, street VARCHAR, city VARCHAR, postcode VARCHAR,
    country VARCHAR, language VARCHAR, birth_date DATE, gender VARCHAR, is_opted_in BOOLEAN,
    opted_in_at TIMESTAMP, is_unsubscribed BOOLEAN, unsubscribed_at TIMESTAMP,
    is_erased BOOLEAN, is_contactable BOOLEAN, lifecycle_stage VARCHAR,
    first_order_at TIMESTAMP, last_order_at TIMESTAMP, order_count INTEGER, revenue DOUBLE,
    last_seen_at TIMESTAMP, last_email_open_at TIMESTAMP, last_email_click_at TIMESTAMP,
    favourite_category VARCHAR, main_device VARCHAR, first_seen_at TIMESTAMP, as_of_date DATE
"""

# (unified_id, email, first, last, city, country, language, opted_in, unsubscribed, erased,
#  lifecycle, last_order_at, order_count, revenue, favourite_category)
PEOPLE = [
    ("u01", "Anna@Example.de ", "Anna", "Schmidt", "Berlin", "DE", "de", True, False, False,
     "active", "2026-01-05 10:00:00", 3, 1234.5, "shoes"),
    ("u02", "john@example.com", None, "=cmd|calc", "Austin", "US", "en", True, False, False,
     "active", "2026-01-05 09:00:00", 1, 1234.5, None),
    ("u03", "marie@example.fr", "Marie", "Dupont", "Paris", "FR", "fr", True, False, False,
     None, "2026-01-05 08:00:00", 2, 1234.5, "hats"),
    ("u04", "noconsent@example.com", "Nora", "N", "Rome", "IT", "it", False, False, False,
     "new", None, 0, None, None),
    ("u05", "unsub@example.com", "Uma", "U", "Lyon", "FR", "fr", True, True, False,
     "lapsed", None, 0, None, None),
    ("u06", None, None, None, None, None, None, True, False, True,
     None, None, 0, None, None),
    ("u07", "bad@@example", "Ivan", "I", "Oslo", "NO", "en", True, False, False,
     "new", None, 0, None, None),
    ("u08", "bounce@example.com", "Bea", "B", "Bonn", "DE", "de", True, False, False,
     "new", None, 0, None, None),
    ("u09", "forgetme@example.com", "Fred", "F", "Kent", "GB", "en", True, False, False,
     "new", None, 0, None, None),
    ("u10", "anna@example.de", "Anna", "Duplicate", "Berlin", "DE", "de", True, False, False,
     "new", None, 0, None, None),
]
EXPORTED = ["u01", "u02", "u03"]
EXPECTED_EXCLUDED = {"no_profile": 1, "erased": 1, "not_opted_in": 1, "unsubscribed": 1,
                     "invalid_email": 1, "erasure_request": 1, "suppressed": 1,
                     "not_contactable": 0, "duplicate_email": 1}


def _segment_node(name: str, meta: dict) -> dict:
    return {"resource_type": "model", "name": name, "tags": ["segment"],
            "original_file_path": f"dbt_project/models/segments/{name}.sql",
            "description": f"{name} description", "config": {"meta": meta}, "columns": {}}


def write_dbt_manifest(settings) -> None:
    nodes = {
        "model.personalization.everyone": _segment_node("everyone", {
            "owner": "crm-team", "merge_fields": ["FNAME", "category", "NOT_A_FIELD"],
            "campaign_id": "spring-sale", "variants": ["A", "B", "C"]}),
        "model.personalization.cart_abandoners": _segment_node("cart_abandoners", {
            "owner": "growth", "merge_fields": ["FNAME", "cart_skus"]}),
        "model.personalization.customer_profiles": {
            "resource_type": "model", "name": "customer_profiles", "tags": [],
            "original_file_path": "dbt_project/models/marts/customer_profiles.sql"},
    }
    settings.dbt_target_dir.mkdir(parents=True, exist_ok=True)
    (settings.dbt_target_dir / "manifest.json").write_text(json.dumps({"nodes": nodes}))


def build_warehouse(settings, day: date, people=PEOPLE, drop_segment: str | None = None) -> None:
    settings.warehouse_path.unlink(missing_ok=True)
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute(f"CREATE TABLE customer_profiles ({PROFILE_COLUMNS})")
    for p in people:
        (uid, email, first, last, city, country, lang, opted, unsub, erased, stage,
         last_order, n_orders, revenue, fav) = p
        valid = email is not None and "@@" not in email
        con.execute(
            "INSERT INTO customer_profiles (unified_id, email, first_name, last_name, city, "
            "country, language, is_opted_in, is_unsubscribed, is_erased, is_contactable, "
            "lifecycle_stage, last_order_at, order_count, revenue, favourite_category, as_of_date) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [uid, email, first, last, city, country, lang, opted, unsub, erased,
             opted and not unsub and not erased and valid, stage, last_order, n_orders,
             revenue, fav, day])
    con.execute("""
        CREATE TABLE customer_scores (unified_id VARCHAR, p_vip DOUBLE, p_churn DOUBLE,
            vip_model_version VARCHAR, churn_model_version VARCHAR, scored_at TIMESTAMP,
            next_best_products VARCHAR[], best_send_hour INTEGER);
        INSERT INTO customer_scores VALUES
            ('u01', 0.93, 0.1, 'vip-v1', 'churn-v1', '2026-01-05', ['SKU2', 'SKU3', 'SKU9'], 19),
            ('u03', 0.20, 0.5, 'vip-v1', 'churn-v1', '2026-01-05', ['SKU1'], NULL);
        CREATE TABLE products (sku VARCHAR, name VARCHAR, category VARCHAR, price DOUBLE,
                               is_active BOOLEAN);
        INSERT INTO products VALUES ('SKU1', 'Boots', 'shoes', 90, true),
            ('SKU2', 'Scarf', 'accessories', 20, true), ('SKU3', 'Hat', 'hats', 25, true),
            ('SKU4', 'Gloves', 'accessories', 15, true), ('SKU5', 'Old', 'misc', 1, false);
        CREATE TABLE orders (order_id VARCHAR, unified_id VARCHAR, customer_id VARCHAR,
            ordered_at TIMESTAMP, ordered_on DATE, status VARCHAR, currency VARCHAR,
            total_amount DOUBLE, item_count INTEGER, is_guest_checkout BOOLEAN);
        INSERT INTO orders VALUES
            ('o1', 'u01', 'c1', '2026-01-05 10:00', '2026-01-05', 'placed', 'EUR', 90, 1, false),
            ('o2', 'u01', 'c1', '2025-12-01 10:00', '2025-12-01', 'placed', 'EUR', 150, 10, false),
            ('o3', 'u03', 'c3', '2026-01-05 08:00', '2026-01-05', 'placed', 'EUR', 100, 5, false);
        CREATE TABLE order_items (order_id VARCHAR, line_number INTEGER, unified_id VARCHAR,
            sku VARCHAR, category VARCHAR, quantity INTEGER, unit_price DOUBLE,
            line_amount DOUBLE, ordered_at TIMESTAMP, status VARCHAR);
        INSERT INTO order_items VALUES
            ('o1', 1, 'u01', 'SKU1', 'shoes', 1, 90, 90, '2026-01-05 10:00', 'placed'),
            ('o2', 1, 'u01', 'SKU4', 'accessories', 10, 15, 150, '2025-12-01 10:00', 'placed'),
            ('o3', 1, 'u03', 'SKU2', 'accessories', 5, 20, 100, '2026-01-05 08:00', 'placed');
        CREATE TABLE customer_content (unified_id VARCHAR, content_language VARCHAR,
            viewed_category VARCHAR, engagement_level VARCHAR, cart_value DOUBLE,
            cart_state VARCHAR, local_offer VARCHAR, because_viewed VARCHAR,
            reengagement_offer VARCHAR, shipping_nudge VARCHAR);
        INSERT INTO customer_content VALUES
            ('u01', 'de', 'shoes', 'dormant', 10, 'below_threshold', 'Versand DE',
             'Weil Sie shoes ansahen', 'Wir vermissen Sie', 'Fast gratis'),
            ('u03', 'fr', NULL, 'engaged', NULL, 'none', 'Livraison FR', NULL, NULL, NULL);
    """)
    members = [p[0] for p in people] + ["u99"]
    con.execute("CREATE TABLE everyone (unified_id VARCHAR, category VARCHAR)")
    con.executemany("INSERT INTO everyone VALUES (?, ?)", [[m, f"cat-{m}"] for m in members])
    if drop_segment != "cart_abandoners":
        con.execute("""
            CREATE TABLE cart_abandoners (unified_id VARCHAR, cart_skus VARCHAR[]);
            INSERT INTO cart_abandoners VALUES ('u01', ['SKU1', 'SKU2']), ('u04', ['SKU3']),
                                               ('u05', ['SKU3']);
        """)
    con.close()


def write_erasures(settings, ds: date, emails: list[str]) -> None:
    part = settings.lake_dir / "raw" / "crm" / "erasure_requests" / f"ds={ds}" / "part-0.parquet"
    part.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("CREATE TABLE e (email VARCHAR, requested_at TIMESTAMP)")
    con.executemany("INSERT INTO e VALUES (?, ?)", [[e, f"{ds} 12:00:00"] for e in emails])
    con.execute(f"COPY e TO '{part}' (FORMAT parquet)")
    con.close()


def write_load_log(settings, source: str, table: str, ds: date) -> None:
    part = settings.lake_dir / "load_log" / source / table / f"ds={ds}" / "part-0.parquet"
    part.parent.mkdir(parents=True, exist_ok=True)
    duckdb.connect().execute(f"COPY (SELECT 1 AS rows_in) TO '{part}' (FORMAT parquet)")


REAL_GATE = publish_module._run_export_gate


@pytest.fixture
def export_home(tmp_path, monkeypatch):
    """Settings over a tmp home with a day-1 warehouse, manifest, erasures and suppressions.

    The GX export gate costs ~1 s per publish, so it is stubbed here; the tests about what
    leaves (layout, consent) put the real one back with `monkeypatch.setattr(..., REAL_GATE)`.
    """
    monkeypatch.setattr(publish_module, "_run_export_gate", lambda tmp, ds, settings: "stubbed")
    settings = load_settings(home=tmp_path, holdout_pct=20.0)
    write_dbt_manifest(settings)
    build_warehouse(settings, DAY1)
    write_erasures(settings, DAY1, ["ForgetMe@example.com "])
    suppress(["bounce@example.com"], "bounce", DAY1, settings)
    for source, table in [("crm", "contacts"), ("shop", "orders")]:
        write_load_log(settings, source, table, DAY1)
    write_load_log(settings, "crm", "contacts", DAY2)  # after ds: must not count
    gate = settings.quality_dir / DAY1.isoformat()
    gate.mkdir(parents=True)
    (gate / "segments.json").write_text(json.dumps({"status": "passed"}))
    return settings


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_publish_layout_manifest_and_checksums(export_home, monkeypatch):
    monkeypatch.setattr(publish_module, "_run_export_gate", REAL_GATE)
    report = publish(DAY1, export_home)
    out = export_home.exports_dir / "2026-01-05"
    assert report.status == "ok" and report.rows_out == 3 + 1
    assert os.readlink(export_home.exports_dir / "latest") == "2026-01-05"
    assert [p.name for p in export_home.exports_dir.iterdir() if p.name.startswith(".")] == []
    m = json.loads((out / "manifest.json").read_text())
    assert m["ds"] == "2026-01-05" and m["created_at"] == "2026-01-05T23:59:59Z"
    assert m["quality_gate"]["segments"] == "passed" and m["quality_gate"]["lake"] == "missing"
    assert m["quality_gate"]["export"] == "passed"  # the real GX gate ran on the temp folder
    assert m["model_versions"] == {"vip": ["vip-v1"], "churn": ["churn-v1"]}
    assert m["source_dates"] == {"crm/contacts": "2026-01-05", "shop/orders": "2026-01-05"}
    assert m["previous_export"] is None
    segs = {s["name"]: s for s in m["segments"]}
    assert list(segs) == ["cart_abandoners", "everyone"]
    everyone = segs["everyone"]
    assert (everyone["description"], everyone["owner"]) == ("everyone description", "crm-team")
    assert (everyone["rows"], everyone["added"], everyone["removed"]) == (3, 3, 0)
    assert everyone["unknown_merge_fields"] == ["NOT_A_FIELD"]
    assert everyone["extra_columns"] == ["CATEGORY"] and not everyone["stale"]
    for seg in segs.values():
        assert set(seg["files"]) == {"mailable", "csv", "parquet", "added", "removed", "changed"}
        for entry in seg["files"].values():
            data = (out / entry["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
            assert len(data) == entry["bytes"]
    assert (out / "segments" / "everyone.csv").exists()
    assert (out / "deltas" / "cart_abandoners.removed.csv").read_text() == "unified_id,email\n"


def test_csv_merge_fields_fallbacks_and_locale_formats(export_home):
    publish(DAY1, export_home)
    out = export_home.exports_dir / "2026-01-05"
    rows = {r["unified_id"]: r for r in read_csv(out / "segments" / "everyone.csv")}
    assert list(rows) == EXPORTED
    anna, john, marie = rows["u01"], rows["u02"], rows["u03"]
    assert anna["email"] == "anna@example.de"  # trimmed, lower case
    assert (anna["FNAME"], anna["CITY"], anna["COUNTRY"], anna["LANGUAGE"]) == (
        "Anna", "Berlin", "DE", "de")
    assert (anna["TOTAL_SPENT"], anna["LAST_ORDER_DATE"]) == ("1.234,50 €", "05.01.2026")
    assert (john["TOTAL_SPENT"], john["LAST_ORDER_DATE"]) == ("$1,234.50", "Jan 5, 2026")
    assert (marie["TOTAL_SPENT"], marie["LAST_ORDER_DATE"]) == ("1 234,50 €", "05/01/2026")
    # u01: two known recommendations (SKU9 unknown), the third falls back to the best
    # seller not already recommended (Gloves: 10 sold); last purchase Boots.
    assert [anna[f"RECO_{i}"] for i in (1, 2, 3)] == ["Scarf", "Hat", "Gloves"]
    assert (anna["LAST_PRODUCT"], anna["BEST_HOUR"], anna["VIP"]) == ("Boots", "19", "yes")
    assert anna["FALLBACKS"] == "RECO_3" and anna["CATEGORY"] == "cat-u01"
    # u02: no first name, no scores, no orders in the window.
    assert john["FNAME"] == "there"
    assert [john[f"RECO_{i}"] for i in (1, 2, 3)] == ["Gloves", "Scarf", "Boots"]
    assert (john["BEST_HOUR"], john["VIP"], john["LAST_PRODUCT"]) == ("10", "no", "Gloves")
    assert john["FALLBACKS"].split(",") == [
        "FNAME", "FAV_CATEGORY", "RECO_1", "RECO_2", "RECO_3", "LAST_PRODUCT", "BEST_HOUR", "VIP",
        "LOCAL_OFFER"]
    # Content rules (customer_content): u01 has every block; u02 no row, so the general
    # offer is the fallback; u03 only the local offer, and optional blocks left out fire
    # no fallback.
    assert (anna["LOCAL_OFFER"], anna["BECAUSE_VIEWED"], anna["REENGAGE_OFFER"],
            anna["SHIPPING_NUDGE"]) == ("Versand DE", "Weil Sie shoes ansahen",
                                        "Wir vermissen Sie", "Fast gratis")
    assert john["LOCAL_OFFER"] == "Free delivery on orders over €50"
    assert (marie["LOCAL_OFFER"], marie["BECAUSE_VIEWED"], marie["SHIPPING_NUDGE"]) == (
        "Livraison FR", "", "")
    assert "BECAUSE_VIEWED" not in marie["FALLBACKS"] and "LOCAL_OFFER" not in marie["FALLBACKS"]
    assert john["FAV_CATEGORY"] == "accessories"  # most sold category
    # CSV for spreadsheets neutralises formulas; the Parquet keeps the exact value.
    assert john["LNAME"] == "'=cmd|calc"
    parquet = duckdb.connect().execute(
        f"SELECT LNAME FROM '{out}/segments/everyone.parquet' WHERE unified_id = 'u02'").fetchone()
    assert parquet == ("=cmd|calc",)
    assert (marie["VIP"], marie["RECO_1"], marie["LIFECYCLE"]) == ("no", "Boots", "prospect")
    assert "LIFECYCLE" in marie["FALLBACKS"] and "BEST_HOUR" in marie["FALLBACKS"]
    carts = read_csv(out / "segments" / "cart_abandoners.csv")
    assert [(r["unified_id"], r["CART_SKUS"]) for r in carts] == [("u01", "SKU1, SKU2")]


def test_csv_for_people_neutralises_every_formula_start_and_only_those(tmp_path):
    # The characters a spreadsheet starts a formula with (and tab / CR, which hide one);
    # a formula character later in the cell, blanks, empties and other scripts stay as they are.
    cells = ["=1+2", "+x", "-3", "@a", "\tx", "\rx", "=", "a=", " =", "", "é=", "😀", None]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(cells)))
    people, machines = tmp_path / "people.csv", tmp_path / "machines.csv"
    files_module.write_csv(con, "SELECT * FROM t ORDER BY i", people)
    files_module.write_csv(con, "SELECT * FROM t ORDER BY i", machines, neutralise=False)
    # As a spreadsheet reads them (csv: a null and an empty cell both read as "").
    read = [[row[1] for row in csv.reader(p.open(newline="", encoding="utf-8"))][1:]
            for p in (people, machines)]
    assert read[0] == ["'=1+2", "'+x", "'-3", "'@a", "'\tx", "'\rx", "'=", "a=", " =", "", "é=",
                       "😀", ""]
    assert read[1] == [c or "" for c in cells]


def test_csv_rows_follow_order_by_past_one_vector_and_hidden_columns_stay_out(tmp_path):
    # 60k rows (30 of DuckDB's 2,048-row vectors) in random order: the file is sorted by
    # `order_by` (at 1M an inner ORDER BY came out vector by vector in another order), and a
    # hidden ordering column is not written.
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT md5(i::VARCHAR) AS k, 'v' || i AS v, i "
                "FROM range(60000) r(i) ORDER BY random()")
    path = tmp_path / "sorted.csv"
    assert files_module.write_csv(con, "SELECT v, k AS sort_key FROM t", path,
                                  order_by="sort_key", hidden=("sort_key",)) == 60000
    rows = list(csv.reader(path.open(newline="", encoding="utf-8")))
    assert rows[0] == ["v"]
    expected = con.execute("SELECT v FROM t ORDER BY k").fetchall()
    assert [r[0] for r in rows[1:]] == [v for (v,) in expected]


def test_mailable_file_leaves_out_the_holdout_and_bookkeeping(export_home):
    publish(DAY1, export_home)
    out = export_home.exports_dir / "2026-01-05"
    full = {r["unified_id"]: r for r in read_csv(out / "segments" / "everyone.csv")}
    assert full["u02"]["is_holdout"] == "true"  # u02 is in the 20 % holdout
    mailable = read_csv(out / "mailable" / "everyone.csv")
    assert [r["email"] for r in mailable] == ["anna@example.de", "marie@example.fr"]
    tags = list(load_merge_fields(export_home).tags)
    assert list(mailable[0]) == ["email", *tags, "CATEGORY", "VARIANT"]
    assert [r["VARIANT"] for r in mailable] == [full["u01"]["variant"], full["u03"]["variant"]]
    m = json.loads((out / "manifest.json").read_text())
    everyone = next(s for s in m["segments"] if s["name"] == "everyone")
    assert (everyone["rows"], everyone["holdout"], everyone["mailable_rows"]) == (3, 1, 2)
    assert "INCLUDING the holdout" in m["file_kinds"]["csv"]


def test_exclusions_are_recorded_beside_the_export_as_hashes(export_home):
    from personalization.export.exclusions import audit_path

    publish(DAY1, export_home)
    path = audit_path(export_home, "2026-01-05")
    assert not path.is_relative_to(export_home.exports_dir)  # never in what leaves
    rows = duckdb.connect().execute(
        f"SELECT segment, unified_id, email_sha256, reason, detail FROM '{path}'").fetchall()
    h = lambda e: hashlib.sha256(e.encode()).hexdigest()  # noqa: E731
    everyone = {r[1]: (r[2], r[3], r[4]) for r in rows if r[0] == "everyone"}
    assert everyone == {
        "u04": (h("noconsent@example.com"), "not_opted_in", None),
        "u05": (h("unsub@example.com"), "unsubscribed", None),
        "u06": (None, "erased", None),
        "u07": (h("bad@@example"), "invalid_email", None),
        "u08": (h("bounce@example.com"), "suppressed", "bounce"),
        "u09": (h("forgetme@example.com"), "erasure_request", None),
        "u10": (h("anna@example.de"), "duplicate_email", None),
        "u99": (None, "no_profile", None)}
    assert sorted(r[1] for r in rows if r[0] == "cart_abandoners") == ["u04", "u05"]
    columns = [c[0] for c in duckdb.connect().execute(f"DESCRIBE SELECT * FROM '{path}'").fetchall()]
    assert columns == ["segment", "unified_id", "email_sha256", "reason", "detail"]  # no email
    assert not list(path.parent.parent.glob(".tmp-*"))


def test_consent_filter_lets_no_excluded_contact_leave(export_home, monkeypatch):
    monkeypatch.setattr(publish_module, "_run_export_gate", REAL_GATE)
    publish(DAY1, export_home)
    out = export_home.exports_dir / "2026-01-05"
    m = json.loads((out / "manifest.json").read_text())
    segs = {s["name"]: s for s in m["segments"]}
    assert segs["everyone"]["members"] == 11
    assert segs["everyone"]["excluded"] == EXPECTED_EXCLUDED
    assert segs["cart_abandoners"]["excluded"]["not_opted_in"] == 1
    assert segs["cart_abandoners"]["excluded"]["unsubscribed"] == 1
    assert m["contacts"]["eligible"] == 3 and m["contacts"]["suppression_list"] == 1
    blocked = {"u04", "u05", "u06", "u07", "u08", "u09", "u10", "u99"}
    # u10 shares u01's email (u01 is exported under it), so it is not in this list.
    blocked_emails = {p[1].strip().lower() for p in PEOPLE
                      if p[0] in blocked - {"u10"} and p[1]}
    for path in out.rglob("*"):
        if path.suffix == ".parquet":
            ids = {r[0] for r in duckdb.connect().execute(
                f"SELECT unified_id FROM '{path}'").fetchall()}
            assert not ids & blocked, path
        elif path.suffix == ".csv" and path.name != "erasures.csv":
            text = path.read_text()
            assert not any(f"{u}," in text for u in blocked), path
            assert not any(e in text for e in blocked_emails), path
    erasures = read_csv(out / "erasures.csv")
    assert erasures == [{"email": "forgetme@example.com",
                         "email_sha256": hashlib.sha256(b"forgetme@example.com").hexdigest(),
                         "requested_at": "2026-01-05T12:00:00Z", "is_new": "true"}]
    # The suppression list holds hashes only.
    text = (export_home.home / "suppressions.csv").read_text()
    assert "bounce@example.com" not in text
    assert hashlib.sha256(b"bounce@example.com").hexdigest() in text


def test_plain_email_suppression_file_is_hashed_on_read(export_home):
    (export_home.home / "suppressions.csv").write_text(
        "email,reason,suppressed_at\n JOHN@example.com ,complaint,2026-01-01\n")
    publish(DAY1, export_home)
    rows = read_csv(export_home.exports_dir / "2026-01-05" / "segments" / "everyone.csv")
    assert [r["unified_id"] for r in rows] == ["u01", "u03", "u08"]


def test_deltas_erasures_and_latest_between_two_dates(export_home):
    publish(DAY1, export_home)
    people = [p for p in PEOPLE if p[0] != "u02"]  # u02 left (e.g. gone from the CRM)
    people.append(("u11", "new@example.com", "Neo", "N", "Leeds", "GB", "en", True, False, False,
                   "new", None, 0, None, None))
    people[0] = ("u01", "anna@example.de", "Annie", *people[0][3:])  # first name changed
    build_warehouse(export_home, DAY2, people)
    write_erasures(export_home, DAY2, ["late@example.com"])
    report = publish(DAY2, export_home)
    out = export_home.exports_dir / "2026-01-06"
    assert report.rows_out == 3 + 1
    assert [r["unified_id"] for r in read_csv(out / "deltas" / "everyone.added.csv")] == ["u11"]
    assert read_csv(out / "deltas" / "everyone.removed.csv") == [
        {"unified_id": "u02", "email": "john@example.com"}]
    changed = read_csv(out / "deltas" / "everyone.changed.csv")
    assert [(r["unified_id"], r["FNAME"]) for r in changed] == [("u01", "Annie")]
    m = json.loads((out / "manifest.json").read_text())
    assert m["previous_export"] == "2026-01-05"
    everyone = next(s for s in m["segments"] if s["name"] == "everyone")
    assert (everyone["added"], everyone["removed"], everyone["changed"]) == (1, 1, 1)
    erasures = {r["email"]: r["is_new"] for r in read_csv(out / "erasures.csv")}
    assert erasures == {"forgetme@example.com": "false", "late@example.com": "true"}
    assert m["erasures"]["new"] == 1
    assert os.readlink(export_home.exports_dir / "latest") == "2026-01-06"
    # Re-running the older date must not move `latest` back.
    build_warehouse(export_home, DAY1)
    publish(DAY1, export_home)
    assert os.readlink(export_home.exports_dir / "latest") == "2026-01-06"


def test_holdout_and_variants_are_deterministic_and_match_python(export_home):
    ids = [f"p{i:05d}" for i in range(20_000)]
    share = sum(is_holdout(u, 5.0) for u in ids) / len(ids)
    assert 0.045 < share < 0.055
    con = duckdb.connect()
    con.execute("CREATE TABLE ids AS SELECT 'p' || lpad(CAST(range AS VARCHAR), 5, '0') AS u "
                "FROM range(20000)")
    sql_rows = con.execute(
        f"SELECT u, {assignment.holdout_sql('u', 5.0)}, "
        f"{assignment.variant_sql('u', 'spring-sale', ['A', 'B', 'C'])} FROM ids ORDER BY u"
    ).fetchall()
    assert sql_rows == [(u, is_holdout(u, 5.0), assignment.variant(u, "spring-sale", "ABC"))
                        for u in ids]
    counts = {v: sum(r[2] == v for r in sql_rows) for v in "ABC"}
    assert all(6_300 < n < 7_000 for n in counts.values()), counts

    publish(DAY1, export_home)
    out = export_home.exports_dir / "2026-01-05"
    rows = read_csv(out / "segments" / "everyone.csv")
    for r in rows:
        assert r["variant"] == assignment.variant(r["unified_id"], "spring-sale", ["A", "B", "C"])
        assert r["is_holdout"] == str(is_holdout(r["unified_id"], 20.0)).lower()
    # Same person, same holdout flag in every segment.
    cart = read_csv(out / "segments" / "cart_abandoners.csv")[0]
    assert cart["is_holdout"] == next(r for r in rows if r["unified_id"] == "u01")["is_holdout"]
    m = json.loads((out / "manifest.json").read_text())
    everyone = next(s for s in m["segments"] if s["name"] == "everyone")
    assert everyone["holdout"] == sum(r["is_holdout"] == "true" for r in rows)
    assert everyone["variants"] == ["A", "B", "C"] and everyone["campaign_id"] == "spring-sale"


def test_rerun_is_byte_identical(export_home):
    publish(DAY1, export_home)
    out = export_home.exports_dir / "2026-01-05"
    first = tree_bytes(out)
    publish(DAY1, export_home)
    assert tree_bytes(out) == first
    assert len(first) == 2 * 6 + 2  # 2 segments x 6 files, erasures, manifest


def test_failure_mid_export_leaves_published_exports_intact(export_home, monkeypatch):
    publish(DAY1, export_home)
    day1 = export_home.exports_dir / "2026-01-05"
    before = tree_bytes(day1)
    calls = {"n": 0}
    real = deltas_module.write_deltas

    def failing_write_deltas(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second segment: the first one's files are already written
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(deltas_module, "write_deltas", failing_write_deltas)
    for ds in (DAY1, DAY2):  # a rerun of a published date and a new date
        calls["n"] = 0
        with pytest.raises(OSError, match="disk full"):
            publish(ds, export_home)
        assert tree_bytes(day1) == before
        assert not (export_home.exports_dir / "2026-01-06").exists()
        assert os.readlink(export_home.exports_dir / "latest") == "2026-01-05"
        assert sorted(p.name for p in export_home.exports_dir.iterdir()) == ["2026-01-05", "latest"]

    # A rejecting quality gate publishes nothing either.
    monkeypatch.setattr(deltas_module, "write_deltas", real)

    def reject(tmp, ds, settings):
        assert (tmp / "manifest.json").exists()  # the gate sees the complete folder
        raise QualityGateError("export gate: consent check failed")

    monkeypatch.setattr(publish_module, "_run_export_gate", reject)
    with pytest.raises(QualityGateError):
        publish(DAY2, export_home)
    assert sorted(p.name for p in export_home.exports_dir.iterdir()) == ["2026-01-05", "latest"]


@pytest.mark.parametrize("breakage", ["import_error", "exception", "unknown_status"])
def test_export_gate_fails_closed(export_home, monkeypatch, breakage):
    """A gate that cannot run, crashes or answers anything but a pass publishes nothing."""
    import sys
    from types import SimpleNamespace

    monkeypatch.setattr(publish_module, "_run_export_gate", REAL_GATE)
    publish(DAY1, export_home)
    before = tree_bytes(export_home.exports_dir / "2026-01-05")
    import personalization.quality as quality

    if breakage == "import_error":
        monkeypatch.setitem(sys.modules, "personalization.quality", None)  # import raises
    elif breakage == "exception":
        def crash(*args, **kwargs):
            raise RuntimeError("GX blew up")

        monkeypatch.setattr(quality, "validate_export", crash)
    else:
        monkeypatch.setattr(quality, "validate_export",
                            lambda *a, **k: SimpleNamespace(status="not_available"))
    for ds in (DAY1, DAY2):  # neither a rerun nor a new date gets through
        with pytest.raises(QualityGateError, match="nothing is published"):
            publish(ds, export_home)
    assert sorted(p.name for p in export_home.exports_dir.iterdir()) == ["2026-01-05", "latest"]
    assert tree_bytes(export_home.exports_dir / "2026-01-05") == before
    assert os.readlink(export_home.exports_dir / "latest") == "2026-01-05"


def test_portal_shows_only_an_all_passed_export_as_passed(tmp_path):
    from personalization.portal.store import Export

    def status(**gates):
        return Export("2026-01-05", tmp_path, {"quality_gate": gates}).status

    assert status(lake="passed", export="passed") == "passed"
    assert status(lake="passed", export="not_available") == "incomplete"
    assert status(lake="missing", export="passed") == "incomplete"
    assert status(lake="passed", export="warning") == "warning"
    assert status(lake="passed", export="failed") == "failed"
    assert status() == "unknown"


def test_failed_segment_keeps_previous_files_and_is_marked_stale(export_home):
    publish(DAY1, export_home)
    build_warehouse(export_home, DAY2, drop_segment="cart_abandoners")
    report = publish(DAY2, export_home)
    assert report.status == "warning" and report.details["stale_segments"] == ["cart_abandoners"]
    day1, day2 = (export_home.exports_dir / d for d in ("2026-01-05", "2026-01-06"))
    for ext in ("csv", "parquet"):
        name = f"segments/cart_abandoners.{ext}"
        assert (day2 / name).read_bytes() == (day1 / name).read_bytes()
    m = json.loads((day2 / "manifest.json").read_text())
    cart = next(s for s in m["segments"] if s["name"] == "cart_abandoners")
    assert cart["stale"] is True and cart["data_ds"] == "2026-01-05"
    assert "missing" in cart["stale_reason"] and (cart["rows"], cart["added"]) == (1, 0)
    # Reported failures from the segment build are honoured too.
    build_warehouse(export_home, DAY2)
    publish(DAY2, export_home, failed_segments=["everyone"])
    m = json.loads(((export_home.exports_dir / "2026-01-06") / "manifest.json").read_text())
    stale = {s["name"]: s["stale"] for s in m["segments"]}
    assert stale == {"cart_abandoners": False, "everyone": True}


def test_missing_warehouse_is_a_clear_error(tmp_path):
    settings = load_settings(home=tmp_path)
    write_dbt_manifest(settings)
    with pytest.raises(ExportError, match="warehouse not found"):
        publish(DAY1, settings)
    assert [p.name for p in settings.exports_dir.iterdir()] == []


def test_merge_field_config_has_the_documented_tags(export_home):
    cfg = load_merge_fields(export_home)
    for tag in ("FNAME", "LNAME", "CITY", "COUNTRY", "LANGUAGE", "FAV_CATEGORY", "RECO_1",
                "RECO_2", "RECO_3", "LAST_PRODUCT", "BEST_HOUR", "VIP", "LIFECYCLE",
                "TOTAL_SPENT", "LAST_ORDER_DATE"):
        assert tag in cfg.tags
    assert cfg.params["vip_threshold"] == export_home.confidence_threshold
    assert all(f.fallback is not None or f.fallback_sql is not None for f in cfg.fields)


def test_members_expired_in_the_membership_history_are_not_exported(export_home):
    # The history (dbt's segment_history layer) closed u01's spell in `everyone` by expiry.
    with duckdb.connect(str(export_home.warehouse_path)) as con:
        con.execute("""
            CREATE TABLE segment_membership_history (segment VARCHAR, unified_id VARCHAR,
                                                     entered_on DATE, left_on DATE);
            INSERT INTO segment_membership_history VALUES
                ('everyone', 'u01', '2025-10-01', '2026-01-05'),
                ('everyone', 'u02', '2025-10-01', NULL),
                ('everyone', 'u03', '2026-01-05', NULL);
        """)
    publish(DAY1, export_home)
    out = export_home.exports_dir / "2026-01-05"
    everyone = [r["unified_id"] for r in read_csv(out / "segments" / "everyone.csv")]
    assert "u01" not in everyone and {"u02", "u03"} <= set(everyone)
    # A segment the history has not processed is exported as its table says.
    carts = [r["unified_id"] for r in read_csv(out / "segments" / "cart_abandoners.csv")]
    assert carts == ["u01"]

"""The warehouse build for real: hand-made lake Parquet -> dbt (DuckDB) -> marts.

One warehouse is built once per module (dbt parsing is slow) for two nightly runs: day 1
(backfill) and day 2 (incremental). Expected values are computed by hand from the rows below.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from personalization.config import load_settings
from personalization.exceptions import WarehouseError
from personalization.warehouse import build, generate_docs, invoke, tested_nights
from personalization.warehouse.dbt import _holds_later_data, _model_vars

DAY1 = date(2026, 3, 30)
DAY2 = date(2026, 3, 31)

SCHEMAS = {
    ("crm", "contacts"): {
        "contact_id": "VARCHAR", "email": "VARCHAR", "first_name": "VARCHAR",
        "last_name": "VARCHAR", "phone": "VARCHAR", "street": "VARCHAR", "city": "VARCHAR",
        "postcode": "VARCHAR", "country": "VARCHAR", "birth_date": "DATE", "gender": "VARCHAR",
        "language": "VARCHAR", "created_at": "TIMESTAMP", "updated_at": "TIMESTAMP",
        "email_opt_in": "BOOLEAN", "opt_in_at": "TIMESTAMP", "unsubscribed_at": "TIMESTAMP",
    },
    ("crm", "erasure_requests"): {"email": "VARCHAR", "requested_at": "TIMESTAMP"},
    ("shop", "customers"): {
        "customer_id": "VARCHAR", "email": "VARCHAR", "first_name": "VARCHAR",
        "last_name": "VARCHAR", "phone": "VARCHAR", "street": "VARCHAR", "city": "VARCHAR",
        "postcode": "VARCHAR", "country": "VARCHAR", "created_at": "TIMESTAMP",
        "updated_at": "TIMESTAMP",
    },
    ("shop", "products"): {
        "sku": "VARCHAR", "name": "VARCHAR", "category": "VARCHAR", "price": "DOUBLE",
        "active": "BOOLEAN",
    },
    ("shop", "orders"): {
        "order_id": "VARCHAR", "customer_id": "VARCHAR", "email": "VARCHAR",
        "ordered_at": "TIMESTAMP", "status": "VARCHAR", "currency": "VARCHAR",
        "total_amount": "DOUBLE",
    },
    ("shop", "order_items"): {
        "order_id": "VARCHAR", "line_number": "INTEGER", "sku": "VARCHAR",
        "quantity": "INTEGER", "unit_price": "DOUBLE",
    },
    ("pixel", "events"): {
        "event_id": "VARCHAR", "occurred_at": "TIMESTAMP", "anonymous_id": "VARCHAR",
        "customer_id": "VARCHAR", "email_sha256": "VARCHAR", "event_type": "VARCHAR",
        "sku": "VARCHAR", "campaign_id": "VARCHAR", "variant": "VARCHAR", "url": "VARCHAR",
        "country": "VARCHAR", "city": "VARCHAR", "device": "VARCHAR",
    },
}


def sha(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def contact(cid, email, first, last, phone, country, updated, opt_in=None, opt_in_at=None,
            unsub=None, street="Hauptstraße 5", city="Berlin", postcode="10115",
            birth="1980-05-01"):
    return {"contact_id": cid, "email": email, "first_name": first, "last_name": last,
            "phone": phone, "street": street, "city": city, "postcode": postcode,
            "country": country, "birth_date": date.fromisoformat(birth) if birth else None,
            "gender": "f", "language": "de", "created_at": ts("2025-01-01T00:00:00"),
            "updated_at": ts(updated), "email_opt_in": opt_in,
            "opt_in_at": ts(opt_in_at) if opt_in_at else None,
            "unsubscribed_at": ts(unsub) if unsub else None}


def customer(cid, email, first, last, phone, country, updated, street=None, city=None):
    return {"customer_id": cid, "email": email, "first_name": first, "last_name": last,
            "phone": phone, "street": street, "city": city, "postcode": None,
            "country": country, "created_at": ts("2025-02-01T00:00:00"),
            "updated_at": ts(updated)}


def order(oid, cid, email, at, status, total):
    return {"order_id": oid, "customer_id": cid, "email": email, "ordered_at": ts(at),
            "status": status, "currency": "EUR", "total_amount": total}


def item(oid, line, sku, qty, price):
    return {"order_id": oid, "line_number": line, "sku": sku, "quantity": qty,
            "unit_price": price}


def event(eid, at, anon, event_type, customer_id=None, email_sha256=None, sku=None,
          device="mobile"):
    return {"event_id": eid, "occurred_at": ts(at), "anonymous_id": anon,
            "customer_id": customer_id, "email_sha256": email_sha256, "event_type": event_type,
            "sku": sku, "campaign_id": "c1" if event_type.startswith("email") else None,
            "variant": None, "url": None, "country": "DE", "city": "Berlin", "device": device}


# Day 1: the backfill. Person A is CRM c1 + shop s1 (same gmail mailbox, spelt differently);
# B is CRM c2 (unsubscribed after opting in); C is CRM c3 (asked for erasure); D is shop s2
# (US phone, an old order); E is a guest checkout.
DAY1_LAKE = {
    ("crm", "contacts"): [
        contact("c1", "  John.Doe+news@GoogleMail.com ", "José", "Müller", "030 1234567", "DE",
                "2025-01-01T00:00:00", True, "2025-01-01T00:00:00"),
        contact("c2", "anna@example.com", "Anna", "Smith", "0000000", "GB",
                "2025-06-01T00:00:00", True, "2025-02-01T00:00:00", "2025-06-01T00:00:00",
                street="1 High Street", city="London", postcode="sw1a 1aa"),
        contact("c3", "erase.me@example.com", "Eve", "Gone", "+44 20 7946 0000", "GB",
                "2025-03-01T00:00:00", True, "2025-03-01T00:00:00"),
    ],
    ("crm", "erasure_requests"): [
        {"email": " Erase.Me@Example.com", "requested_at": ts("2026-03-29T09:00:00")},
    ],
    ("shop", "customers"): [
        customer("s1", "johndoe@gmail.com", "Jose", "Muller", "+49 (30) 123-4567", "DE",
                 "2025-02-01T00:00:00"),
        customer("s2", "Bob.Stone+shop@Example.org", "Bob", "Stone", "(555) 123-4567", "US",
                 "2025-02-01T00:00:00", street="1 Main Street", city="Springfield"),
    ],
    ("shop", "products"): [
        {"sku": "P1", "name": "Runner", "category": "Shoes", "price": 50.0, "active": True},
        {"sku": "P2", "name": "Cap", "category": "Hats", "price": 20.0, "active": True},
    ],
    ("shop", "orders"): [
        order("o1", "s1", "johndoe@gmail.com", "2026-03-20T10:00:00", "placed", 100.0),
        order("o2", "s1", "johndoe@gmail.com", "2026-03-25T10:00:00", "cancelled", 20.0),
        order("o3", "s2", "bob@example.org", "2025-09-01T10:00:00", "placed", 30.0),
        order("o4", None, "Guest@Example.com", "2026-03-29T10:00:00", "placed", 40.0),
    ],
    ("shop", "order_items"): [
        item("o1", 1, "P1", 2, 50.0), item("o2", 1, "P2", 1, 20.0),
        item("o3", 1, "P2", 1, 30.0), item("o4", 1, "P2", 2, 20.0),
    ],
    ("pixel", "events"): [
        event("e1", "2026-03-29T08:00:00", "a1", "login", customer_id="s1"),
        event("e2", "2026-03-29T08:01:00", "a1", "product_view", customer_id="s1", sku="P1"),
        # At-least-once: a later line repeats e1 (here with another device: the first line wins).
        event("e1", "2026-03-29T08:00:00", "a1", "login", customer_id="s1", device="tablet"),
        event("e3", "2026-03-29T09:00:00", "a2", "email_open", email_sha256=sha("anna@example.com"),
              device="desktop"),
    ],
}

# Day 2: c1 changes address, o2 is re-delivered as refunded, D orders again, e1 arrives
# a day late once more, e4 is new. Customers and erasure requests deliver an empty file.
DAY2_LAKE = {
    ("crm", "contacts"): [
        contact("c1", "john.doe@gmail.com", "José", "Müller", "030 1234567", "DE",
                "2026-03-31T07:00:00", True, "2025-01-01T00:00:00", street="Neue Straße 1",
                city="Potsdam", postcode="14467"),
    ],
    ("crm", "erasure_requests"): [],
    ("shop", "customers"): [],
    ("shop", "orders"): [
        order("o2", "s1", "johndoe@gmail.com", "2026-03-25T10:00:00", "refunded", 20.0),
        order("o5", "s2", "bob@example.org", "2026-03-31T09:00:00", "placed", 60.0),
    ],
    ("shop", "order_items"): [item("o2", 1, "P2", 1, 20.0), item("o5", 1, "P1", 1, 60.0)],
    ("pixel", "events"): [
        event("e1", "2026-03-29T08:00:00", "a1", "login", customer_id="s1"),
        event("e4", "2026-03-31T08:00:00", "a1", "add_to_cart", customer_id="s1", sku="P1"),
    ],
}


def write_lake(lake: Path, ds: date, tables: dict) -> None:
    """Write each table as <lake>/raw/<source>/<table>/ds=<ds>/part-0.parquet with DuckDB."""
    con = duckdb.connect()
    for (source, table), rows in tables.items():
        schema = {**SCHEMAS[(source, table)], "_line_number": "BIGINT"}
        target = lake / "raw" / source / table / f"ds={ds.isoformat()}"
        target.mkdir(parents=True, exist_ok=True)
        con.execute(f"create or replace table t ({', '.join(f'{c} {t}' for c, t in schema.items())})")
        if rows:
            placeholders = ", ".join("?" for _ in schema)
            con.executemany(f"insert into t values ({placeholders})",
                            [[*(r[c] for c in SCHEMAS[(source, table)]), i]
                             for i, r in enumerate(rows, start=1)])
        con.execute(f"copy t to '{target / 'part-0.parquet'}' (format parquet)")
    con.close()


def query(settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def snapshot(settings) -> dict[str, list[tuple]]:
    tables = ["customer_profiles", "orders", "order_items", "customer_events",
              "customer_engagement_daily", "customer_rfm", "products"]
    return {t: query(settings, f"select * from {t} order by all") for t in tables}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """Day 1 built, snapshotted, then day 2 built incrementally on top."""
    home = tmp_path_factory.mktemp("warehouse")
    settings = load_settings(home=home)
    write_lake(settings.lake_dir, DAY1, DAY1_LAKE)
    staging = settings.dbt_target_dir / "compiled" / "personalization" / "dbt_project" / "models" / "staging"
    unique_test = staging / "_staging.yml" / "unique_in_recent_deliveries_stg_pixel__events_event_id.sql"
    day1 = build(DAY1, "marts", settings)
    day1_unique_sql = unique_test.read_text()
    day1_counts = {t: query(settings, f"select count(*) from {t}")[0][0]
                   for t in ("stg_pixel__events", "stg_shop__orders", "stg_shop__order_items")}
    write_lake(settings.lake_dir, DAY2, DAY2_LAKE)
    day2 = build(DAY2, "marts", settings)
    compiled = (staging / "stg_pixel__events.sql").read_text()
    return {"settings": settings, "day1": day1, "day2": day2, "day1_counts": day1_counts,
            "day2_events_sql": compiled, "unique_sql": (day1_unique_sql, unique_test.read_text())}


def person_of(settings, source: str, source_id: str) -> str:
    rows = query(settings, f"select unified_id from identity_map "
                           f"where source = '{source}' and source_id = '{source_id}'")
    assert len(rows) == 1, (source, source_id, rows)
    return rows[0][0]


def test_report_lists_models_and_timings(warehouse):
    report = warehouse["day2"]
    assert report.step == "build_marts" and report.ds == "2026-03-31"
    assert report.rows_out == len(report.details["model_seconds"]) >= 14
    for model in ("stg_pixel__events", "customer_profiles", "customer_rfm", "identity_map"):
        assert model in report.details["model_seconds"]
    assert report.details["tests_passed"] > 20


def test_email_phone_and_name_normalisation(warehouse):
    s = warehouse["settings"]
    rows = dict((r[0], r[1:]) for r in query(s, """
        select contact_id, email, email_normalized, email_sha256, phone_e164,
               first_name_clean, last_name_clean, street_clean, postcode_clean
        from stg_crm__contacts"""))
    # c1's latest version (day 2) wins over day 1.
    assert rows["c1"][:4] == ("john.doe@gmail.com", "johndoe@gmail.com",
                              sha("john.doe@gmail.com"), "+49301234567")
    assert rows["c1"][4:7] == ("jose", "muller", "neue str 1")
    assert rows["c2"][3] is None  # 0000000 is junk
    assert rows["c2"][6:] == ("1 high st", "SW1A1AA")
    assert rows["c3"][3] == "+442079460000"
    shop = dict(query(s, "select customer_id, phone_e164 from stg_shop__customers"))
    assert shop == {"s1": "+49301234567", "s2": "+15551234567"}
    guest = query(s, "select email_normalized from stg_shop__orders where order_id = 'o4'")
    assert guest == [("guest@example.com",)]


def test_email_normalisation_gmail_and_tags(warehouse):
    s = warehouse["settings"]
    rows = dict(query(s, "select customer_id, email_normalized from stg_shop__customers"))
    # Other domains: only the +tag goes, dots stay.
    assert rows == {"s1": "johndoe@gmail.com", "s2": "bob.stone@example.org"}
    # c1's day-1 spelling " John.Doe+news@GoogleMail.com " is the same mailbox as s1.
    rows = query(s, "select count(distinct unified_id) from identity_map "
                    "where (source, source_id) in (('crm', 'c1'), ('shop', 's1'))")
    assert rows == [(1,)]


def test_events_deduplicated_across_days(warehouse):
    s = warehouse["settings"]
    assert warehouse["day1_counts"]["stg_pixel__events"] == 3  # e1 twice in the file
    rows = query(s, "select event_id, delivered_on from stg_pixel__events order by event_id")
    assert rows == [("e1", DAY1), ("e2", DAY1), ("e3", DAY1), ("e4", DAY2)]
    # The earliest line of the earliest delivery is the occurrence kept, not the repeat.
    assert query(s, "select device from stg_pixel__events where event_id = 'e1'") == [("mobile",)]
    assert query(s, "select count(*) from customer_events") == [(4,)]
    # The nightly run read only the new partition (pruned at compile time).
    sql = warehouse["day2_events_sql"]
    assert "ds <= date '2026-03-31'" in sql and "ds > date '2026-03-30'" in sql


def test_first_build_tests_every_event_later_nights_the_recent_deliveries(warehouse):
    # Night 1 loads every delivery at once: its uniqueness test reads every row. Night 2
    # checks the keys of the deliveries after the last night whose tests passed (night 1)
    # against every row.
    day1_sql, day2_sql = warehouse["unique_sql"]
    assert "delivered_on >" not in day1_sql
    assert f"delivered_on > date '{DAY1}'" in day2_sql


def test_orders_latest_version_and_revenue(warehouse):
    s = warehouse["settings"]
    statuses = dict(query(s, "select order_id, status from orders"))
    assert statuses == {"o1": "placed", "o2": "refunded", "o3": "placed", "o4": "placed",
                        "o5": "placed"}
    a = person_of(s, "shop", "s1")
    d = person_of(s, "shop", "s2")
    e = person_of(s, "guest", "guest@example.com")
    profiles = {r[0]: r[1:] for r in query(s, """
        select unified_id, order_count, revenue, lifecycle_stage, first_order_at::date
        from customer_profiles""")}
    # A: o1 placed 100 (o2 refunded, excluded); first order 2026-03-20 -> 11 days -> new.
    assert profiles[a] == (1, 100.0, "new", date(2026, 3, 20))
    # D: o3 (2025-09-01) + o5 (2026-03-31): first order 211 days ago, last today -> active.
    assert profiles[d] == (2, 90.0, "active", date(2025, 9, 1))
    assert profiles[e] == (1, 40.0, "new", date(2026, 3, 29))
    items = query(s, "select order_id, item_count, is_guest_checkout from orders order by 1")
    assert items[3] == ("o4", 2, True)


def test_golden_record_consent_and_erasure(warehouse):
    s = warehouse["settings"]
    cols = ("email, first_name, last_name, phone, street, city, country, is_opted_in, "
            "is_unsubscribed, is_erased, is_contactable")
    a = query(s, f"select {cols} from customer_profiles "
                 f"where unified_id = '{person_of(s, 'crm', 'c1')}'")[0]
    # CRM email beats shop; names: "josé"/"jose" tie on frequency? No: cleaned both "jose",
    # so the most recent spelling wins (c1 day 2, José). Address from the newest record.
    assert a == ("john.doe@gmail.com", "José", "Müller", "+49301234567", "Neue Straße 1",
                 "Potsdam", "DE", True, False, False, True)
    b = query(s, f"select {cols} from customer_profiles "
                 f"where unified_id = '{person_of(s, 'crm', 'c2')}'")[0]
    assert b[7:] == (False, True, False, False)  # unsubscribed after opting in
    c = query(s, f"select {cols} from customer_profiles "
                 f"where unified_id = '{person_of(s, 'crm', 'c3')}'")[0]
    assert c[:7] == (None,) * 7 and c[9] is True and c[10] is False


def test_rfm_for_buyers_only(warehouse):
    s = warehouse["settings"]
    rows = query(s, "select recency_days, frequency, monetary, recency_score, frequency_score, "
                    "monetary_score, rfm_score from customer_rfm order by recency_days")
    # Buyers: D (last 0 d, 2 orders, 90), E (2 d, 1, 40), A (11 d, 1, 100). Only 3 rows, so
    # ntile(5) gives 1, 2, 3 by rank in each ordering.
    assert rows == [
        (0, 2, 90.0, 3, 3, 2, "332"),
        (2, 1, 40.0, 2, 1, 1, "211"),
        (11, 1, 100.0, 1, 2, 3, "123"),
    ]
    assert query(s, "select count(*) from customer_rfm where as_of_date = date '2026-03-31'") \
        == [(3,)]


def test_rerun_changes_nothing_and_full_refresh_agrees(warehouse):
    s = warehouse["settings"]
    before = snapshot(s)
    assert build(DAY2, "marts", s).details["full_refresh"] is False
    assert snapshot(s) == before
    # The night runs the data tests, not the dbt unit tests (CI does: test_unit_tests_pass).
    ran = [r["unique_id"].split(".")[0]
           for r in json.loads((s.dbt_target_dir / "run_results.json").read_text())["results"]]
    assert "test" in ran and "model" in ran and "unit_test" not in ran
    assert tested_nights.passed_through(DAY2, s) == DAY2
    assert tested_nights.passed_through(DAY1, s) == DAY1
    # `personalization run --full-refresh`: the report says it was a rebuild.
    assert build(DAY2, "marts", s, full_refresh=True).details["full_refresh"] is True
    assert snapshot(s) == before
    # A full refresh rewrote every row: only its own pass stands.
    assert tested_nights.passed_through(DAY1, s) is None
    assert tested_nights.passed_through(DAY2, s) == DAY2


def test_an_earlier_date_is_seen_as_a_backfill(warehouse):
    # Built through DAY2: rebuilding DAY1 incrementally would mix nights, build() fully refreshes.
    s = warehouse["settings"]
    assert _holds_later_data(DAY1, s)
    assert not _holds_later_data(DAY2, s)


def test_unit_tests_pass(warehouse):
    # Unit tests of this stage's models (segment unit tests need customer_scores built).
    # The build's --vars, so dbt reuses the fixture's parse (other vars: a full re-parse).
    result = invoke(["test", "--select", "test_type:unit,path:dbt_project/models/intermediate",
                     "test_type:unit,path:dbt_project/models/marts"], warehouse["settings"], ds=DAY2,
                    extra_vars=_model_vars(warehouse["settings"]))
    names = {r.node.name for r in result.results}
    assert {"lifecycle_stage_thresholds", "rfm_quintiles_and_segments"} <= names


def test_failure_names_the_node_in_one_line(warehouse):
    with pytest.raises(WarehouseError) as err:
        invoke(["show", "--inline", "select * from no_such_table"], warehouse["settings"],
               ds=DAY2, extra_vars=_model_vars(warehouse["settings"]))
    message = str(err.value)
    assert message.startswith("dbt show failed:")
    assert "no_such_table" in message and "Traceback" not in message
    assert all(len(line) <= 400 for line in message.splitlines())
    with pytest.raises(WarehouseError, match="unknown dbt stage"):
        build(DAY2, "everything", warehouse["settings"])


@pytest.mark.slow
def test_docs_generate(warehouse):
    index = generate_docs(warehouse["settings"], ds=DAY2)
    assert index.exists()
    catalog = warehouse["settings"].dbt_target_dir / "catalog.json"
    assert "customer_profiles" in catalog.read_text()


# generate -> extract -> build marts for two nights with every dbt test passing on generated
# data: tests/test_e2e.py::test_every_dbt_test_passes_and_marts_hold_every_person (its night).


def test_connections_that_read_data_at_scale_run_under_the_memory_limit(tmp_path):
    """Every connection that reads the warehouse or the lake at scale is held to
    `duckdb_memory_limit` (an unlimited one let the 1M erase step's compaction reach 20.7 GiB)
    and an in-memory one has a spill folder (without one it fails past the limit)."""
    from personalization.export.publisher import _connect as export_connection
    from personalization.extract.runner import _connect as extract_connection
    from personalization.privacy.encryption import connect_warehouse
    from personalization.privacy.erasure import _connect as erasure_connection
    from personalization.privacy.redact import copy_connection
    from personalization.triggers.state import open_state

    settings = load_settings(home=tmp_path / "home", duckdb_memory_limit="300MB", duckdb_threads=1)
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    duckdb.connect(str(settings.warehouse_path)).close()
    with duckdb.connect(config={"memory_limit": "300MB"}) as reference:
        limit = reference.execute("select current_setting('memory_limit')").fetchone()[0]
    assert limit != duckdb.connect().execute("select current_setting('memory_limit')").fetchone()[0]
    for name, connect in [("warehouse", lambda: connect_warehouse(settings)),
                          ("compaction", lambda: copy_connection(settings)),
                          ("extract", lambda: extract_connection(settings)),
                          ("export", lambda: export_connection(settings)),
                          ("erasure", lambda: erasure_connection(settings)),
                          ("trigger state", lambda: open_state(settings))]:
        con = connect()
        try:
            memory, threads, spill = con.execute(
                "select current_setting('memory_limit'), current_setting('threads'), "
                "current_setting('temp_directory')").fetchone()
        finally:
            con.close()
        assert (memory, threads) == (limit, 1), name
        assert spill and Path(spill).is_absolute(), (name, spill)

"""Incremental event and per-person marts: a generated backfill night and the nights after it built one
after the other give the same tables as a `--full-refresh` build of the last night, and so
do reruns of the last night: as it was, with an event added to its delivery, and after
retention expired night 1's events (docs/performance.md).

On night 2 an anonymous cookie from night 1 logs in to a shop account (identity moves the
cookie's key pair to the account's person) and a product changes category, so the test
covers re-mapped and re-labelled events, not only appended ones; the cookie also clicked a
campaign on night 1 (its campaign_responses row moves), the product has order lines, and a
shop account held back from night 1 to night 2 makes its night-1 orders reach a person
without being delivered again (the incremental order models). Night 3 brings only what
the generator delivers: the models that add new events to the rows they have
(int_customers__device_activity, int_customers__category_views) take that path for most of
its persons, and a rerun must not count the night's events twice. Night 3 also converts a
click of an earlier night (campaign_responses recomputes the 7 days before a new
purchase), merges two one-record persons through a shop account carrying the other's CRM
email (the rerun of night 3 drops that version: they split again) and brings an erasure
request for a person whose records do not change (the golden record follows its consent
row). `dbt run` without the data tests keeps it short; the nightly build runs the tests.
"""

from __future__ import annotations

import collections
import csv
import gzip
import json
import shutil
from datetime import date, timedelta

import duckdb
import pandas as pd

from personalization.config import SOURCES, load_settings
from personalization.generate import generate
from personalization.pipeline import run_step
from personalization.privacy import redact
from personalization.privacy.emails import email_sha256
from personalization.warehouse import invoke

NIGHT1 = date(2026, 5, 1)
NIGHT2 = NIGHT1 + timedelta(days=1)
NIGHT3 = NIGHT2 + timedelta(days=1)
PLANTED_CAMPAIGN = "cmp-planted"
# Every model the incremental nights maintain, and the tables built from them.
TABLES = ("stg_pixel__events", "int_events__resolved", "customer_events", "customer_engagement_daily",
          "int_customers__device_activity", "int_customers__event_activity",
          "int_customers__category_views",
          "int_customers__activity", "int_customers__golden_record", "customer_profiles", "int_identity__cookie_keys",
          "int_identity__blocking_keys", "campaign_responses",
          "int_orders__person_keys", "int_orders__resolved", "int_order_items__resolved",
          "orders", "order_items", "stg_shop__orders", "stg_shop__order_items",
          # The person staging keeps every normalised version (docs/identity.md, "Kept person
          # versions"); the latest-version views and the records read them.
          "stg_crm__contact_versions", "stg_shop__customer_versions", "stg_crm__contacts",
          "stg_shop__customers", "int_persons__records", "int_customers__source_records",
          # Identity's per-record chain computes only the records changed since it last ran
          # (docs/identity.md, "Identity that follows tonight's records").
          "int_identity__records", "int_identity__guarded_records", "int_identity__record_fingerprints",
          "int_identity__cluster_region", "int_identity__clusters", "int_identity__id_assignment",
          # Recomputed only around records whose deterministic edges changed.
          "int_identity__deterministic_components",
          # Recomputed block by block (docs/identity.md, "Blocked pairs by block").
          "int_identity__blocked_pairs")
# Columns compared where a table keeps bookkeeping a rebuild sets afresh (the night a block
# was last sized, which of a record's rows carries its state).
COLUMNS = {"int_identity__blocking_keys": "record_key, component_id, blocking_rule, block_key, block_size, fingerprint",
           # paired_at: the run that last computed a block's pairs
           "int_identity__blocked_pairs": "node_a, node_b, blocking_rule, block_key",
           # changed_at: when the run that last wrote the row started (stamped tables)
           **{table: "* exclude (changed_at)" for table in (
               "int_identity__cookie_keys", "int_persons__records", "int_customers__source_records",
               "int_identity__records",
               "int_identity__guarded_records", "int_identity__record_fingerprints",
               "int_identity__clusters")},
           # The full refresh runs on a copy of the home after the night: the ids it reads as
           # last night's are tonight's, so the flags of what changed tonight (and the scores of
           # kept rows, which a re-estimated model moves) are compared by test_identity_incremental,
           # from the same previous state.
           "int_identity__id_assignment": "record_key, source, source_id, unified_id, match_rule, cluster_id",
           # (the region's flags are tonight's change: a rebuild's region is every record)
           "int_identity__cluster_region": "record_key, record_signature"}
SELECT = ["--select", "+customer_profiles", "+customer_engagement_daily", "+customer_events",
          "+campaign_responses", "+orders", "+order_items", "stg_crm__contacts"]


def _plant_login(landing) -> tuple[str, str]:
    """Append to night 2's pixel file a login of a night-1 anonymous cookie into an account
    that night 1 delivered and no night-1 event names (by account or email hash), so the
    cookie's old days are new days for the account's person. Returns (cookie, customer_id)."""
    events = []
    with gzip.open(landing / "pixel" / NIGHT1.isoformat() / "events.jsonl.gz", "rt") as f:
        for line in f:
            try:
                events.append(json.loads(line))
            except ValueError:  # the generator plants broken lines
                continue
    events = [e for e in events if isinstance(e, dict) and isinstance(e.get("anonymous_id"), str)]
    logged_in = {e["anonymous_id"] for e in events if e.get("customer_id")}
    cookie = sorted({e["anonymous_id"] for e in events} - logged_in)[0]
    seen = {str(e.get("customer_id")) for e in events} | {e.get("email_sha256") for e in events}
    with (landing / "shop" / NIGHT1.isoformat() / "customers.csv").open(encoding="utf-8") as f:
        customer_id = next(c["customer_id"] for c in csv.DictReader(f)
                           if c["customer_id"] not in seen and email_sha256(c["email"]) not in seen)
    login = {"event_id": "planted-login", "occurred_at": f"{NIGHT2.isoformat()}T12:00:00Z",
             "anonymous_id": cookie, "customer_id": customer_id, "email_sha256": None,
             "event_type": "login", "sku": None, "campaign_id": None, "variant": None,
             "url": "https://shop.example/login", "country": "DE", "city": "Berlin",
             "device": "desktop", "user_agent": "Mozilla/5.0"}
    _append_line(landing / "pixel" / NIGHT2.isoformat() / "events.jsonl.gz", login)
    # The cookie clicked a campaign on night 1: its campaign_responses row moves with it.
    _append_line(landing / "pixel" / NIGHT1.isoformat() / "events.jsonl.gz", {
        **login, "event_id": "planted-click", "occurred_at": f"{NIGHT1.isoformat()}T09:00:00Z",
        "customer_id": None, "event_type": "email_click", "campaign_id": PLANTED_CAMPAIGN,
        "variant": "A", "url": "https://shop.example/?utm_campaign=planted"})
    # Night 3 delivers the login again (at-least-once), on another device: the night-2 row
    # stays the event's only one.
    _append_line(landing / "pixel" / NIGHT3.isoformat() / "events.jsonl.gz", {**login, "device": "tablet"})
    return cookie, customer_id


def _append_line(path, row: dict) -> None:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        text = f.read()
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(text.rstrip("\n") + "\n" + json.dumps(row) + "\n")


def _plant_late_account(landing, login_account: str) -> list[str]:
    """Move a night-1 shop account (not `login_account`, not delivered again later) to night
    2's delivery and blank the email of its night-1 orders: those orders reach no person on
    night 1 (quarantined) and reach the account's person on night 2, although nothing
    delivers them again. Returns their order ids."""
    shop = landing / "shop"
    rows = {}  # raw csv rows (the generator plants malformed ones), header first
    for night in (NIGHT1, NIGHT2, NIGHT3):
        with (shop / night.isoformat() / "customers.csv").open(newline="", encoding="utf-8") as f:
            rows[night] = list(csv.reader(f))
    later = {r[0] for night in (NIGHT2, NIGHT3) for r in rows[night][1:] if r}
    lines = (shop / NIGHT1.isoformat() / "orders.jsonl").read_text(encoding="utf-8").splitlines()
    orders = []
    for line in lines:
        try:
            orders.append(json.loads(line))
        except ValueError:  # the generator plants broken lines
            orders.append(None)
    candidates = {r[0] for r in rows[NIGHT1][1:] if r} - later - {login_account}
    account = next(o["customer_id"] for o in orders if isinstance(o, dict) and o.get("order_id")
                   and o.get("customer_id") in candidates)
    held_back = [r for r in rows[NIGHT1] if r and r[0] == account]
    rows[NIGHT1] = [r for r in rows[NIGHT1] if not (r and r[0] == account)]
    rows[NIGHT2] += held_back
    for night in (NIGHT1, NIGHT2):
        with (shop / night.isoformat() / "customers.csv").open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows[night])
    ids = []
    for i, order in enumerate(orders):
        if isinstance(order, dict) and order.get("customer_id") == account:
            order["email"] = None
            lines[i] = json.dumps(order)
            ids += [order["order_id"]] if order.get("order_id") else []
    (shop / NIGHT1.isoformat() / "orders.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ids


def _recategorise_one_product(landing) -> str:
    path = landing / "shop" / NIGHT2.isoformat() / "products.csv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    ordered = (landing / "shop" / NIGHT1.isoformat() / "orders.jsonl").read_text(encoding="utf-8")
    with gzip.open(landing / "pixel" / NIGHT1.isoformat() / "events.jsonl.gz", "rt") as f:
        viewed = f.read()
    # A sku with night-1 events and order lines: both are re-labelled.
    first = next(r for r in rows if f'"{r["sku"]}"' in ordered and f'"{r["sku"]}"' in viewed)
    first["category"] = next(r["category"] for r in rows
                             if r["category"] and r["category"] != first["category"])
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return first["sku"]


def _extract_and_build(settings, ds: date) -> None:
    for source in SOURCES:
        run_step(f"extract_{source}", ds, settings)
    invoke(["run", *SELECT], settings, ds)


def _tables(settings) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return {name: con.execute(f"select {COLUMNS.get(name, '*')} from {name} order by all").df()
                for name in TABLES}


def test_incremental_nights_equal_a_full_refresh(tmp_path):
    settings = load_settings(home=tmp_path / "home", landing_dir=tmp_path / "landing")
    generate(out=settings.landing_dir, customers=150, days=3, seed=5, start=NIGHT1,
             truth_path=tmp_path / "truth.parquet")
    cookie, account = _plant_login(settings.landing_dir)
    sku = _recategorise_one_product(settings.landing_dir)
    late_orders = _plant_late_account(settings.landing_dir, account)
    invoke(["seed"], settings)
    _extract_and_build(settings, NIGHT1)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        # (the extract quarantines a few of the generator's order lines itself)
        late_orders = [r[0] for r in con.execute(
            "select order_id from int_orders__person_keys where quarantine_reason = "
            f"'account_quarantined' and order_id in ({', '.join('?' * len(late_orders))})",
            late_orders).fetchall()]
    assert late_orders
    _extract_and_build(settings, NIGHT2)

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        moved = con.execute(
            "select unified_id, previous_unified_id from int_events__key_persons "
            "where anonymous_id = ? and customer_id is null and remapped_on = ?",
            [cookie, NIGHT2]).fetchall()
        relabelled = con.execute(
            "select count(*) from int_events__sku_categories where sku = ? and changed_on = ?",
            [sku, NIGHT2]).fetchone()[0]
        night1_events_of_sku = con.execute(
            "select count(*) from customer_events where sku = ? and delivered_on = ?",
            [sku, NIGHT1]).fetchone()[0]
        lines_of_sku = con.execute("select count(*) from order_items where sku = ?",
                                   [sku]).fetchone()[0]
        # Tonight's rows (the new delivery and the re-written night-1 events of the
        # relabelled sku) are appended in time order, so min/max per row group stay narrow:
        # from the first of them in storage order to the end, occurred_at never goes back.
        appended = [r[0] for r in con.execute(
            "select occurred_at from int_events__resolved where rowid >= (select min(rowid) "
            "from int_events__resolved where delivered_on = ? or (sku = ? and delivered_on = ?)) "
            "order by rowid", [NIGHT2, sku, NIGHT1]).fetchall()]
        # The campaign click moved with the cookie's pair.
        clicked = con.execute("select unified_id from campaign_responses where campaign_id = ?",
                              [PLANTED_CAMPAIGN]).fetchall()

        # The orders of the late account now reach its person.
        late = con.execute(
            "select count(*) from orders inner join int_identity__id_assignment as m "
            "on m.source = 'shop' and orders.customer_id = m.source_id "
            "and orders.unified_id = m.unified_id "
            f"where order_id in ({', '.join('?' * len(late_orders))})", late_orders).fetchone()[0]
        # Days of the cookie's night-1 events that the person it moved to had no row for
        # before: customer_engagement_daily must add them although no new event is on them.
        new_days = con.execute(
            "select count(*) from customer_engagement_daily where unified_id = ? "
            "and activity_on < ? and last_delivered_on = ?",
            [moved[0][0] if moved else None, NIGHT1, NIGHT1]).fetchone()[0]
    # The cookie's night-1 events moved to another person, and the sku has old events.
    assert len(moved) == 1 and moved[0][1] is not None and moved[0][0] != moved[0][1]
    assert new_days > 0
    assert relabelled == 1 and night1_events_of_sku > 0 and lines_of_sku > 0
    assert len(appended) > night1_events_of_sku and appended == sorted(appended)
    assert clicked == [(moved[0][0],)]
    assert late_orders and late == len(late_orders)
    _assert_full_refresh_gives_the_same(tmp_path, settings, "copy", NIGHT2)

    # Night 3: what the generator delivers, and a purchase converting an earlier night's
    # click (a campaign_responses row of an earlier night changes). Most of its persons already have
    # rows, which the new events are added to.
    click = _plant_purchase_after_click(settings, NIGHT3)
    bridged, erased_id = _plant_bridge_and_erasure(settings, NIGHT3)
    cancelled = _plant_cancellation(settings, NIGHT3)
    _extract_and_build(settings, NIGHT3)
    # The bridged account's person and the contact's merged (one id is gone); the erasure
    # request reached a person none of whose records changed.
    assert len(_persons_of(settings, bridged)) == 1, bridged
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select status from stg_shop__orders where order_id = ?",
                           [cancelled]).fetchall() == [("cancelled",)]
        assert con.execute("select delivered_on, device from stg_pixel__events "
                           "where event_id = 'planted-login'").fetchall() == [(NIGHT2, "desktop")]
    assert _golden(settings, erased_id) == [(True, None)]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        returning = con.execute(
            "select count(distinct unified_id) from customer_events where delivered_on = ? "
            "and unified_id in (select unified_id from customer_events where delivered_on < ?)",
            [NIGHT3, NIGHT3]).fetchone()[0]
        converted = con.execute(
            "select has_converted from campaign_responses where campaign_id = ? and variant = ? "
            "and unified_id = ? and activity_on = ?", list(click)).fetchall()
    assert returning > 0
    assert converted == [(True,)], click
    _assert_full_refresh_gives_the_same(tmp_path, settings, "night3", NIGHT3)

    # A rerun of night 3 as it was: its rows already count the night's events.
    invoke(["run", *SELECT], settings, NIGHT3)
    _assert_full_refresh_gives_the_same(tmp_path, settings, "rerun", NIGHT3)

    # A home built before the identity stamps, the person fingerprints, the edge signatures
    # (columns these tables gained on 2026-12-04) and the event keys (2026-12-07): the next
    # night adds them in place, recomputes once and gives the full refresh's rows; it must not
    # stop for a --full-refresh.
    added_columns = {"changed_at", "input_fingerprint", "edge_signature", "event_key"}
    with duckdb.connect(str(settings.warehouse_path)) as con:
        added = con.execute("select table_name, column_name from information_schema.columns "
                            "where column_name in ?", [list(added_columns)]).fetchall()
        for table, column in added:
            con.execute(f'alter table "{table}" drop column "{column}"')
    assert {c for _, c in added} == added_columns, added
    invoke(["run", *SELECT], settings, NIGHT3)
    _assert_full_refresh_gives_the_same(tmp_path, settings, "upgraded", NIGHT3)

    # A rerun of night 3 whose delivery gained a product view of a person with older views,
    # re-delivers an earlier contact updated (a new last name) and lost one of its contacts'
    # lines (the rerun must drop that version: the contact's earlier one is its latest again).
    person_key = _add_product_view(settings, NIGHT3)
    updated, dropped = _redeliver_contacts(settings.landing_dir, NIGHT3)
    _unbridge(settings.landing_dir, bridged[0], NIGHT3)
    # ... and lost the events of a cookie seen before (its keys fall back to the earlier
    # delivery) and of a cookie seen only that night (it leaves identity).
    seen_before, seen_once = _drop_cookies(settings, NIGHT3)
    # ... and lost the cancellation of a night-1 order (its placed version is back) and an
    # order only that night delivered (it leaves).
    only_tonight = _drop_orders(settings.landing_dir, NIGHT3, cancelled)
    _extract_and_build(settings, NIGHT3)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select status, delivered_on from stg_shop__orders where order_id = ?",
                           [cancelled]).fetchall() == [("placed", NIGHT1)]
        assert con.execute("select status from orders where order_id = ?",
                           [cancelled]).fetchall() == [("placed",)]
        for table in ("stg_shop__orders", "stg_shop__order_items", "int_orders__person_keys",
                      "orders", "order_items"):
            assert con.execute(f"select count(*) from {table} where order_id = ?",
                               [only_tonight]).fetchone()[0] == 0, table
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select max(delivered_on) from int_identity__cookie_keys "
                           "where anonymous_id = ?", [seen_before]).fetchone()[0] < NIGHT3
        assert con.execute("select count(*) from stg_pixel__events where anonymous_id = ? "
                           "and delivered_on = ?", [seen_before, NIGHT3]).fetchone()[0] == 0
        assert con.execute("select count(*) from int_identity__cookie_keys where anonymous_id = ?",
                           [seen_once]).fetchone()[0] == 0
        assert con.execute("select count(*) from int_identity__records where source = 'pixel' "
                           "and source_id = ?", [seen_once]).fetchone()[0] == 0
    # Without the bridging version the two records split again.
    assert len(_persons_of(settings, bridged)) == 2, bridged
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select count(*) from customer_events where event_id = 'planted-view'"
                           ).fetchone()[0] == 1, person_key
        assert con.execute("select last_name, delivered_on from stg_crm__contacts where contact_id = ?",
                           [updated]).fetchall() == [("Redelivered", NIGHT3)]
        assert con.execute("select count(*) from stg_crm__contact_versions where contact_id = ? "
                           "and delivered_on = ?", [dropped, NIGHT3]).fetchone()[0] == 0
        assert con.execute("select count(*) from stg_crm__contact_versions where contact_id = ?",
                           [updated]).fetchone()[0] >= 2
    _assert_full_refresh_gives_the_same(tmp_path, settings, "rerun_changed", NIGHT3)

    # A rerun of night 2 with night 3 loaded: night 3's fold is undone by rebuilding the
    # cookie keys, folded up to night 1 (the newest delivery before night 2).
    invoke(["run", "--select", "int_identity__cookie_keys"], settings, NIGHT2)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        keys = "anonymous_id, customer_id, email_sha256, checkout_order_id"
        held = con.execute(f"select delivered_on, {keys} from int_identity__cookie_keys "
                           "order by all").fetchall()
        expected = con.execute(f"""
            select delivered_on, {keys} from (
                select distinct delivered_on, anonymous_id, customer_id, email_sha256,
                    case when contains(url, 'order=')
                        then regexp_extract(url, '[?&]order=([^&#]+)', 1) end as checkout_order_id
                from stg_pixel__events where anonymous_id is not null)
            qualify delivered_on > ? or delivered_on = max(delivered_on) over (
                partition by {keys}, delivered_on > ?)
            order by all""", [NIGHT1, NIGHT1]).fetchall()
    assert held == expected
    # Night 3 is loaded, and a combination night 3's fold had kept once has its night-1 row again.
    combinations = collections.Counter(tuple(row[1:]) for row in held if row[0] <= NIGHT2)
    assert any(d == NIGHT3 for d, *_ in held) and max(combinations.values()) == 2

    # Retention expires night 1's delivery (lake partition and loaded events, as
    # enforce_retention does); a rerun of night 3 drops those events from every mart.
    shutil.rmtree(settings.lake_dir / "raw" / "pixel" / "events" / f"ds={NIGHT1.isoformat()}")
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("delete from stg_pixel__events where delivered_on = ?", [NIGHT1])
    invoke(["run", *SELECT], settings, NIGHT3)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select count(*) from customer_events where delivered_on = ?",
                           [NIGHT1]).fetchone()[0] == 0
    # Night 1 held every campaign open and click of this data: campaign_responses is empty.
    _assert_full_refresh_gives_the_same(tmp_path, settings, "expired", NIGHT3,
                                        may_be_empty=("campaign_responses",))

    # The erase step finds the kept person versions by their columns (privacy.matching): every
    # version of an erased contact leaves the warehouse, the earlier ones too.
    keys = tmp_path / "erased_keys.parquet"
    duckdb.sql(f"copy (select sha256('crm:' || '{updated}') as key_sha256, 'record' as key_kind) "
               f"to '{keys}' (format parquet)")
    erased = {c["path"].split("#")[-1] for c in redact.warehouse(settings, keys, NIGHT3)}
    assert {"stg_crm__contact_versions", "int_persons__records"} <= erased, erased
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select count(*) from stg_crm__contact_versions where contact_id = ?",
                           [updated]).fetchone()[0] == 0


def _plant_purchase_after_click(settings, ds: date) -> tuple:
    """Append to `ds`'s pixel file a purchase, early on `ds`, by the key pair of a click of
    an earlier night, less than 6 days before, whose campaign_responses row has not
    converted. Returns that row's (campaign_id, variant, unified_id, activity_on)."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        anonymous_id, customer_id, *row = con.execute(
            "select clicks.anonymous_id, clicks.customer_id, responses.campaign_id, "
            "responses.variant, responses.unified_id, responses.activity_on "
            "from stg_pixel__events as clicks "
            "inner join customer_events as events on clicks.event_id = events.event_id "
            "inner join campaign_responses as responses "
            "on events.unified_id = responses.unified_id "
            "and events.campaign_id = responses.campaign_id and events.variant = responses.variant "
            "and cast(events.occurred_at as date) = responses.activity_on "
            "where clicks.event_type = 'email_click' and not responses.has_converted "
            "and clicks.anonymous_id is not null and clicks.delivered_on < ? "
            "and clicks.occurred_at >= ? "
            "order by clicks.occurred_at desc, clicks.event_id limit 1",
            [ds, ds - timedelta(days=6)]).fetchone()
    _append_event(settings, ds, {
        "event_id": "planted-purchase", "occurred_at": f"{ds.isoformat()}T06:00:00Z",
        "anonymous_id": anonymous_id, "customer_id": customer_id, "email_sha256": None,
        "event_type": "purchase", "sku": None, "campaign_id": None, "variant": None,
        "url": "https://shop.example/checkout/done", "country": "DE", "city": "Berlin",
        "device": "desktop", "user_agent": "Mozilla/5.0"})
    return tuple(row)


def _plant_bridge_and_erasure(settings, ds: date) -> tuple[tuple[str, str], str]:
    """Append to `ds`'s deliveries a new version of an earlier shop account (its person has
    that one record) carrying the email of an earlier CRM contact of another one-record
    person (identity merges the two persons, one id goes), and an erasure request for a
    third one-record CRM person with nothing else delivered on `ds`. Returns ((shop
    customer_id, crm contact_id), erased contact_id)."""
    landing = settings.landing_dir
    tonight = {f: (landing / f / ds.isoformat() / n).read_text(encoding="utf-8")
               for f, n in (("crm", "contacts.csv"), ("shop", "customers.csv"))}
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        singles = con.execute(
            "select any_value(source), any_value(source_id), any_value(email) "
            "from int_customers__source_records group by unified_id "
            "having count(*) = 1 and bool_and(is_email_valid) order by 2").fetchall()
    crm = [(i, e) for s, i, e in singles if s == "crm" and i not in tonight["crm"]]
    shop = [i for s, i, _ in singles if s == "shop" and i not in tonight["shop"]]
    (taker, email), (erased, erased_email) = crm[0], crm[1]
    path = landing / "shop" / ds.isoformat() / "customers.csv"
    with (landing / "shop").joinpath(NIGHT1.isoformat(), "customers.csv").open(
            newline="", encoding="utf-8") as f:
        rows = {r["customer_id"]: r for r in csv.DictReader(f)}
    donor = next(i for i in shop if i in rows)
    with path.open("a", newline="", encoding="utf-8") as f:
        csv.DictWriter(f, fieldnames=list(rows[donor])).writerow(
            {**rows[donor], "email": email, "updated_at": f"{ds.isoformat()}T07:00:00Z"})
    with (landing / "crm" / ds.isoformat() / "erasure_requests.csv").open(
            "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow([erased_email, f"{ds.isoformat()}T07:30:00Z"])
    return (donor, taker), erased


def _unbridge(landing, donor: str, ds: date) -> None:
    """Remove the bridging version of `donor` from `ds`'s shop delivery."""
    path = landing / "shop" / ds.isoformat() / "customers.csv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if not (r and r[0] == donor)]
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


def _persons_of(settings, bridged: tuple[str, str]) -> set[str]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return {r[0] for r in con.execute(
            "select unified_id from int_customers__source_records "
            "where (source, source_id) in (('shop', ?), ('crm', ?))", list(bridged)).fetchall()}


def _golden(settings, contact_id: str) -> list[tuple]:
    """(is_erased, email) of the customer_profiles row of a CRM contact's person."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(
            "select is_erased, email from customer_profiles where unified_id in ("
            "select unified_id from int_customers__source_records "
            "where source = 'crm' and source_id = ?)", [contact_id]).fetchall()


def _redeliver_contacts(landing, ds: date) -> tuple[str, str]:
    """Rewrite `ds`'s CRM delivery: append an updated version (new last name, later
    updated_at) of a contact delivered on an earlier night only, and remove the line of one
    of the night's contacts that an earlier night delivered too. Returns their ids."""
    crm = landing / "crm"
    earlier = {}
    for night in sorted(p.name for p in crm.iterdir() if p.name < ds.isoformat()):
        with (crm / night / "contacts.csv").open(newline="", encoding="utf-8") as f:
            earlier.update({r["contact_id"]: r for r in csv.DictReader(f)
                            if r.get("contact_id") and None not in r and None not in r.values()})
    path = crm / ds.isoformat() / "contacts.csv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))  # raw rows: the generator plants malformed ones
    header, tonight = rows[0], {r[0] for r in rows[1:] if r}
    dropped = next(r[0] for r in rows[1:] if len(r) == len(header) and r[0] in earlier)
    rows = [r for r in rows if not (r and r[0] == dropped)]
    updated = next(c for c in sorted(earlier) if c not in tonight and earlier[c]["updated_at"])
    row = {**earlier[updated], "last_name": "Redelivered", "updated_at": f"{ds.isoformat()}T08:00:00Z"}
    rows.append([row[column] for column in header])
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return updated, dropped


def _append_event(settings, ds: date, event: dict) -> None:
    _append_line(settings.landing_dir / "pixel" / ds.isoformat() / "events.jsonl.gz", event)


def _add_product_view(settings, ds: date) -> tuple[str | None, str | None]:
    """Append to `ds`'s pixel file a product view, on `ds`, by the key pair of an earlier
    product view of a known sku. Returns that (anonymous_id, customer_id)."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        anonymous_id, customer_id, sku = con.execute(
            "select anonymous_id, customer_id, sku from stg_pixel__events "
            "where event_type = 'product_view' and sku is not null and delivered_on < ? "
            "and anonymous_id is not null order by event_id limit 1", [ds]).fetchone()
    view = {"event_id": "planted-view", "occurred_at": f"{ds.isoformat()}T13:00:00Z",
            "anonymous_id": anonymous_id, "customer_id": customer_id, "email_sha256": None,
            "event_type": "product_view", "sku": sku, "campaign_id": None, "variant": None,
            "url": f"https://shop.example/p/{sku}", "country": "DE", "city": "Berlin",
            "device": "mobile", "user_agent": "Mozilla/5.0"}
    _append_event(settings, ds, view)
    return anonymous_id, customer_id


def _orders_of(path) -> dict[str, dict]:
    """The parseable orders of an orders.jsonl file (the generator plants broken lines)."""
    orders = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            order = json.loads(line)
        except ValueError:
            continue
        if isinstance(order, dict) and isinstance(order.get("order_id"), str):
            orders[order["order_id"]] = order
    return orders


def _plant_cancellation(settings, ds: date) -> str:
    """Append to `ds`'s shop delivery the cancellation of a placed order that night 1
    delivered, the warehouse holds and no later night delivers again (a status change
    re-delivers the whole order). Returns its id."""
    shop = settings.landing_dir / "shop"
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        held = {r[0] for r in con.execute(
            "select order_id from stg_shop__orders where delivered_on = ? and status = 'placed' "
            "and customer_id is not null", [NIGHT1]).fetchall()}
    later = set()
    for night in sorted(p.name for p in shop.iterdir() if NIGHT1.isoformat() < p.name <= ds.isoformat()):
        later |= set(_orders_of(shop / night / "orders.jsonl"))
    order = next(o for i, o in sorted(_orders_of(shop / NIGHT1.isoformat() / "orders.jsonl").items())
                 if i in held and i not in later and o.get("items"))
    with (shop / ds.isoformat() / "orders.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps({**order, "status": "cancelled"}) + "\n")
    return order["order_id"]


def _drop_orders(landing, ds: date, redelivered: str) -> str:
    """Remove from `ds`'s shop delivery the lines of `redelivered` and of an order no earlier
    night delivered. Returns the second."""
    shop = landing / "shop"
    earlier = set()
    for night in sorted(p.name for p in shop.iterdir() if p.name < ds.isoformat()):
        earlier |= set(_orders_of(shop / night / "orders.jsonl"))
    path = shop / ds.isoformat() / "orders.jsonl"
    only_tonight = next(i for i in sorted(_orders_of(path)) if i not in earlier)
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines
            if f'"{redelivered}"' not in line and f'"{only_tonight}"' not in line]
    assert len(kept) < len(lines) - 1
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return only_tonight


def _drop_cookies(settings, ds: date) -> tuple[str, str]:
    """Remove from `ds`'s pixel file every event of a cookie that an earlier delivery also
    has, and of one that only `ds` has (none planted). Returns (the first, the second)."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        first, second = (con.execute(
            "select anonymous_id from stg_pixel__events where anonymous_id is not null "
            "group by anonymous_id having bool_or(delivered_on = ?) "
            f"and {condition} and not bool_or(event_id like 'planted%') "
            "order by anonymous_id limit 1", [ds, ds]).fetchone()[0]
            for condition in ("bool_or(delivered_on < ?)", "bool_and(delivered_on >= ?)"))
    path = settings.landing_dir / "pixel" / ds.isoformat() / "events.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    kept = [line for line in lines if f'"{first}"' not in line and f'"{second}"' not in line]
    assert len(kept) < len(lines)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(kept) + "\n")
    return first, second


def _assert_full_refresh_gives_the_same(tmp_path, settings, name: str, ds: date,
                                        may_be_empty: tuple[str, ...] = ()) -> None:
    """Full-refresh a copy of the home (lake and warehouse) at `ds` and compare."""
    home = tmp_path / name
    shutil.copytree(settings.home, home)
    copy = load_settings(home=home, landing_dir=settings.landing_dir)
    incremental = _tables(settings)
    invoke(["run", *SELECT, "--full-refresh"], copy, ds)
    full = _tables(copy)
    for table in TABLES:
        assert len(incremental[table]) > 0 or table in may_be_empty, table
        pd.testing.assert_frame_equal(incremental[table], full[table], obj=table)

"""Extractors on hand-written dirty landing files (no generator needed)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import duckdb
import pytest

from personalization.config import load_settings
from personalization.exceptions import ExtractError, SourceMissingError
from personalization.extract import extract_source
from personalization.extract.contracts import FILES, lake_columns

DS = date(2026, 3, 10)
CONTACT_HEADER = ("contact_id,email,first_name,last_name,phone,street,city,postcode,country,"
                  "birth_date,gender,language,created_at,updated_at,email_opt_in,opt_in_at,"
                  "unsubscribed_at")
GOOD_CONTACT = ("c1,ann@example.com,Ann,Lee,+1 555 0100,1 Main St,Boston,02110,US,1980-02-03,f,"
                "en,2024-01-01T10:00:00Z,2026-03-10T23:00:00Z,true,2024-01-01T10:00:00Z,")
CUSTOMER_HEADER = ("customer_id,email,first_name,last_name,phone,street,city,postcode,country,"
                   "created_at,updated_at")
GOOD_CUSTOMER = "s1,ann@example.com,Ann,Lee,,1 Main St,Boston,02110,US,2025-05-01 08:00:00,"
PRODUCT_HEADER = "sku,name,category,price,active"
GOOD_PRODUCT = "SKU-1,Mug,kitchen,9.5,true"


def order(**over) -> str:
    o = {"order_id": "o1", "customer_id": "s1", "email": "ann@example.com",
         "ordered_at": "2026-03-10T09:00:00Z", "status": "placed", "currency": "EUR",
         "total_amount": 19.0, "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": 9.5}]}
    o.update(over)
    return json.dumps(o)


def event(**over) -> str:
    e = {"event_id": "e1", "occurred_at": "2026-03-10T09:00:00Z", "anonymous_id": "a1",
         "customer_id": None, "email_sha256": None, "event_type": "page_view", "sku": None,
         "campaign_id": None, "variant": None, "url": "https://shop.example/", "country": "US",
         "city": "Boston", "device": "mobile", "user_agent": "Mozilla/5.0 (X11)"}
    e.update(over)
    return json.dumps(e)


@pytest.fixture
def settings(tmp_path):
    return load_settings(home=tmp_path)


def write_landing(settings, source: str, files: dict[str, str | bytes], ds: date = DS) -> Path:
    """Write the given files and a clean minimal version of the other files of `source`
    (the intake's day file of pixel events included: it is read like a landing file)."""
    folder = settings.landing_dir / source / ds.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    defaults = {
        "contacts.csv": f"{CONTACT_HEADER}\n{GOOD_CONTACT}\n",
        "erasure_requests.csv": "email,requested_at\nold@example.com,2026-03-09T12:00:00Z\n",
        "customers.csv": f"{CUSTOMER_HEADER}\n{GOOD_CUSTOMER}\n",
        "products.csv": f"{PRODUCT_HEADER}\n{GOOD_PRODUCT}\n",
        "orders.jsonl": order() + "\n",
        "events.jsonl.gz": gzip.compress((event() + "\n").encode()),
        "events.jsonl": event() + "\n",
        "suppressions.csv": "esp,email_sha256,reason,esp_reason,reported_at\n"
                            f"mailchimp,{'ab' * 32},unsubscribe,unsubscribed,2026-03-09 12:00:00\n",
    }
    for spec in FILES[source]:
        content = files.get(spec.file_name, defaults[spec.file_name])
        if spec.file_name.endswith(".gz") and isinstance(content, str):
            content = gzip.compress(content.encode())
        root = settings.intake_dir if spec.root == "intake" else settings.landing_dir
        path = root / source / ds.isoformat() / spec.file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return folder


def lake(settings, area: str, source: str, table: str, ds: date = DS) -> Path:
    return settings.lake_dir / area / source / table / f"ds={ds.isoformat()}" / "part-0.parquet"


def rows(path: Path, sql: str = "SELECT * FROM t") -> list[tuple]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{path}', hive_partitioning = false)")
    return con.execute(sql).fetchall()


def report(reports, table: str):
    return next(r for r in reports if r.step.endswith(f".{table}"))


# --- clean data, exact lake schema ---------------------------------------------------------

def test_clean_delivery_loads_every_table_with_the_contract_columns_and_types(settings):
    for source in FILES:
        write_landing(settings, source, {})
        for r in extract_source(source, DS, settings):
            assert (r.rows_in, r.rows_out, r.rows_quarantined, r.status) == (1, 1, 0, "ok"), r
    for source, specs in FILES.items():
        for spec in specs:
            for table in spec.tables:
                described = rows(lake(settings, "raw", source, table.name),
                                 "SELECT column_name, column_type FROM (DESCRIBE t)")
                assert described == lake_columns(table)
    contact = rows(lake(settings, "raw", "crm", "contacts"),
                   "SELECT birth_date, email_opt_in, updated_at, unsubscribed_at, _line_number FROM t")
    assert contact == [(date(1980, 2, 3), True,
                        __import__("datetime").datetime(2026, 3, 10, 23, 0), None, 1)]
    items = rows(lake(settings, "raw", "shop", "order_items"))
    assert items == [("o1", 1, "SKU-1", 2, 9.5, 1)]


def test_pixel_drops_user_agent_and_never_stores_ip_addresses(settings):
    bad = event(event_id="e2", event_type="teleport", ip="203.0.113.9")
    write_landing(settings, "pixel", {"events.jsonl.gz": "\n".join([
        event(url="https://shop.example/?from=198.51.100.7"), bad, '{"event_id": "e3", "ip": "10.1.2.3", broken'])})
    extract_source("pixel", DS, settings)
    raw = lake(settings, "raw", "pixel", "events")
    assert "user_agent" not in [c for c, in rows(raw, "SELECT column_name FROM (DESCRIBE t)")]
    stored = json.dumps(rows(raw) + rows(lake(settings, "quarantine", "pixel", "events")), default=str)
    for secret in ("198.51.100.7", "203.0.113.9", "10.1.2.3", "Mozilla"):
        assert secret not in stored


def test_offsets_are_converted_to_utc_and_history_is_fine(settings):
    write_landing(settings, "shop", {"orders.jsonl": "\n".join([
        order(order_id="a", ordered_at="2026-03-10T23:30:00-02:00"),  # 01:30 UTC on the 11th: future
        order(order_id="b", ordered_at="2026-03-11T00:10:00Z"),  # inside the 15 min skew
        order(order_id="c", ordered_at="2019-06-01T08:00:00+02:00"),  # backfill history
    ])})
    extract_source("shop", DS, settings)
    loaded = rows(lake(settings, "raw", "shop", "orders"), "SELECT order_id, ordered_at::VARCHAR FROM t")
    assert loaded == [("b", "2026-03-11 00:10:00"), ("c", "2019-06-01 06:00:00")]
    assert rows(lake(settings, "quarantine", "shop", "orders"), "SELECT reason FROM t") == [
        ("future_timestamp:ordered_at",)]


# --- one test per quarantine reason ------------------------------------------------------

CASES = [
    # (source, file, table, bad line, expected reason)
    ("crm", "contacts.csv", "contacts", "c9,bob@example.com,Bob", "wrong_field_count"),
    ("crm", "contacts.csv", "contacts", 'c9,bob@example.com,"Bob,Lee' + "," * 14, "malformed_csv"),
    ("crm", "contacts.csv", "contacts", "," + GOOD_CONTACT.split(",", 1)[1], "missing_key:contact_id"),
    ("crm", "contacts.csv", "contacts", GOOD_CONTACT.replace("ann@example.com", "ann(at)example"),
     "invalid_email:email"),
    ("crm", "contacts.csv", "contacts", GOOD_CONTACT.replace("1980-02-03", "03/02/1980"),
     "bad_type:birth_date"),
    ("crm", "contacts.csv", "contacts", GOOD_CONTACT.replace(",true,", ",maybe,"),
     "bad_type:email_opt_in"),
    ("crm", "contacts.csv", "contacts", GOOD_CONTACT.replace("2026-03-10T23:00:00Z", "2026-03-11T00:16:00Z"),
     "future_timestamp:updated_at"),
    ("crm", "contacts.csv", "contacts", GOOD_CONTACT.replace("1980-02-03", "2030-01-01"),
     "future_timestamp:birth_date"),
    ("crm", "contacts.csv", "contacts", "c9,b\xe9@example.com".encode("latin-1") + b"," * 15,
     "invalid_encoding"),
    ("crm", "erasure_requests.csv", "erasure_requests", ",2026-03-09T12:00:00Z", "missing_key:email"),
    ("crm", "erasure_requests.csv", "erasure_requests", "x@example.com,", "missing_value:requested_at"),
    ("shop", "customers.csv", "customers", GOOD_CUSTOMER.replace("2025-05-01 08:00:00", "yesterday"),
     "bad_type:created_at"),
    ("shop", "products.csv", "products", "SKU-2,Pan,kitchen,-3,true", "negative_amount:price"),
    ("shop", "products.csv", "products", "SKU-2,Pan,kitchen,cheap,true", "bad_type:price"),
    ("shop", "orders.jsonl", "orders", '{"order_id": "o2", "items": [', "invalid_json"),
    ("shop", "orders.jsonl", "orders", '["o2"]', "not_an_object"),
    ("shop", "orders.jsonl", "orders", order(order_id=None), "missing_key:order_id"),
    ("shop", "orders.jsonl", "orders", order(status="shipped"), "unknown_value:status"),
    ("shop", "orders.jsonl", "orders", order(email="nobody"), "invalid_email:email"),
    ("shop", "orders.jsonl", "orders", order(items=[]), "no_items"),
    ("shop", "orders.jsonl", "orders", order(items="SKU-1"), "bad_type:items"),
    ("shop", "orders.jsonl", "orders",
     order(items=[{"sku": "SKU-1", "quantity": 0, "unit_price": 9.5}]),
     "non_positive_quantity:items[1].quantity"),
    ("shop", "orders.jsonl", "orders",
     order(items=[{"sku": "SKU-1", "quantity": 1.5, "unit_price": 9.5}]), "bad_type:items[1].quantity"),
    ("shop", "orders.jsonl", "orders", order(items=[{"quantity": 1, "unit_price": 9.5}]),
     "missing_key:items[1].sku"),
    ("pixel", "events.jsonl.gz", "events", event(event_type="teleport"), "unknown_value:event_type"),
    ("pixel", "events.jsonl.gz", "events", event(event_id=""), "missing_key:event_id"),
    ("pixel", "events.jsonl.gz", "events", event(occurred_at="2026-03-12T00:00:00Z"),
     "future_timestamp:occurred_at"),
    ("pixel", "events.jsonl.gz", "events", event(email_sha256="abc"), "bad_type:email_sha256"),
]


@pytest.mark.parametrize(("source", "file_name", "table", "bad", "reason"), CASES,
                         ids=[c[4] + "-" + c[2] for c in CASES])
def test_bad_row_is_quarantined_with_its_reason_and_the_rest_loads(settings, source, file_name,
                                                                  table, bad, reason):
    header = {"contacts.csv": CONTACT_HEADER, "erasure_requests.csv": "email,requested_at",
              "customers.csv": CUSTOMER_HEADER, "products.csv": PRODUCT_HEADER}.get(file_name)
    good = {"contacts": GOOD_CONTACT, "erasure_requests": "ok@example.com,2026-03-09T12:00:00Z",
            "customers": GOOD_CUSTOMER, "products": GOOD_PRODUCT, "orders": order(),
            "events": event()}[table]
    bad_bytes = bad if isinstance(bad, bytes) else bad.encode()
    lines = ([header.encode()] if header else []) + [good.encode(), bad_bytes, good.encode()]
    write_landing(settings, source, {file_name: b"\n".join(lines) + b"\n"})
    r = report(extract_source(source, DS, settings), table)
    assert (r.rows_in, r.rows_out, r.rows_quarantined) == (3, 2, 1)
    q = rows(lake(settings, "quarantine", source, table), "SELECT source_file, line_number, raw, reason FROM t")
    expected_raw = bad_bytes.decode("utf-8", errors="replace")
    if source == "pixel":  # the user agent never reaches the lake, not even quarantine
        expected_raw = json.dumps({k: v for k, v in json.loads(bad).items() if k != "user_agent"},
                                  separators=(",", ":"))
    assert q == [(f"{source}/{DS}/{file_name}", 2, expected_raw, reason)]
    assert rows(lake(settings, "raw", source, table), "SELECT list(_line_number) FROM t") == [([1, 3],)]


def test_order_with_a_bad_item_is_quarantined_with_all_its_items_and_counts_add_up(settings):
    bad_items = [{"sku": "SKU-1", "quantity": 1, "unit_price": 9.5},
                 {"sku": "SKU-2", "quantity": -1, "unit_price": 3.0},
                 {"sku": "SKU-NEW", "quantity": 1, "unit_price": 1.0}]
    write_landing(settings, "shop", {"orders.jsonl": "\n".join([
        order(order_id="o1", items=bad_items[:1] + bad_items[2:]),  # unknown SKU: still loads
        order(order_id="o2", items=bad_items),
        "not json at all",
        "",  # blank line: not a record
        order(order_id="o3", status="teleported", items=bad_items[:2]),
    ]) + "\n"})
    reports = extract_source("shop", DS, settings)
    orders, items = report(reports, "orders"), report(reports, "order_items")
    assert (orders.rows_in, orders.rows_out, orders.rows_quarantined) == (4, 1, 3)
    # items of parseable orders: 2 + 3 + 2; only o1's two are loaded
    assert (items.rows_in, items.rows_out, items.rows_quarantined) == (7, 2, 5)
    assert rows(lake(settings, "raw", "shop", "order_items"), "SELECT order_id, sku FROM t") == [
        ("o1", "SKU-1"), ("o1", "SKU-NEW")]
    assert rows(lake(settings, "quarantine", "shop", "orders"), "SELECT line_number, reason FROM t") == [
        (2, "non_positive_quantity:items[2].quantity"), (3, "invalid_json"),
        (5, "unknown_value:status; non_positive_quantity:items[2].quantity")]
    assert rows(lake(settings, "quarantine", "shop", "order_items"),
                "SELECT line_number, reason FROM t ORDER BY line_number, reason") == [
        (2, "non_positive_quantity:quantity"), (2, "order_quarantined"), (2, "order_quarantined"),
        (5, "non_positive_quantity:quantity"), (5, "order_quarantined")]
    log = rows(settings.lake_dir / "load_log" / "shop" / "*" / f"ds={DS}" / "part-0.parquet",
               "SELECT table_name, rows_in, rows_loaded, rows_quarantined, status FROM t ORDER BY 1")
    assert log == [("customers", 1, 1, 0, "loaded"), ("order_items", 7, 2, 5, "loaded"),
                   ("orders", 4, 1, 3, "loaded"), ("products", 1, 1, 0, "loaded")]


def test_header_lacking_a_contract_column_fails_the_file(settings):
    write_landing(settings, "shop", {"products.csv": "sku,name,price,active\nA,B,1,true\n"})
    with pytest.raises(ExtractError, match=r"products.csv: header lacks contract column\(s\) \['category'\]"):
        extract_source("shop", DS, settings)


def test_columns_are_found_by_header_name(settings):
    write_landing(settings, "shop", {"products.csv": "active,price,sku,extra,category,name\ntrue,2.5,A,x,c,Mug\n"})
    extract_source("shop", DS, settings)
    assert rows(lake(settings, "raw", "shop", "products")) == [("A", "Mug", "c", 2.5, True, 1)]


# --- empty and missing deliveries ----------------------------------------------------------

@pytest.mark.parametrize(("source", "file_name", "content"), [
    ("crm", "contacts.csv", b""),
    ("crm", "contacts.csv", (CONTACT_HEADER + "\r\n").encode()),
    ("shop", "orders.jsonl", b"\n"),
    ("pixel", "events.jsonl.gz", gzip.compress(b"")),
    ("pixel", "events.jsonl.gz", b""),
], ids=["zero-bytes", "header-only", "blank-line", "empty-gzip", "zero-byte-gz"])
def test_empty_file_loads_zero_rows_with_status_empty(settings, source, file_name, content, caplog):
    write_landing(settings, source, {file_name: content})
    table = next(s.tables[0] for s in FILES[source] if s.file_name == file_name)
    r = report(extract_source(source, DS, settings), table.name)
    assert (r.rows_in, r.rows_out, r.rows_quarantined, r.status) == (0, 0, 0, "empty")
    assert "extract_empty_file" in caplog.text
    path = lake(settings, "raw", source, table.name)
    assert rows(path, "SELECT count(*) FROM t") == [(0,)]
    assert rows(path, "SELECT column_name, column_type FROM (DESCRIBE t)") == lake_columns(table)
    log = lake(settings, "load_log", source, table.name)
    assert rows(log, "SELECT rows_in, status FROM t") == [(0, "empty")]


def test_missing_file_of_a_required_source_raises_naming_source_file_and_date(settings):
    folder = write_landing(settings, "crm", {})
    (folder / "erasure_requests.csv").unlink()
    with pytest.raises(SourceMissingError, match=r"'crm'.*erasure_requests.csv.*2026-03-10"):
        extract_source("crm", DS, settings)
    with pytest.raises(SourceMissingError, match="events.jsonl.gz"):
        extract_source("pixel", DS, settings)


def test_missing_file_of_an_optional_source_is_skipped(tmp_path):
    settings = load_settings(home=tmp_path, required_sources=["crm", "shop"])
    reports = extract_source("pixel", DS, settings)
    assert [(r.step, r.status) for r in reports] == [("extract_pixel.events", "skipped"),
                                                     ("extract_pixel.intake_events", "skipped")]
    assert not (settings.lake_dir / "raw" / "pixel").exists()


# --- idempotency and atomic replacement -----------------------------------------------------

def _partition_files(settings) -> dict[str, bytes]:
    return {str(p.relative_to(settings.lake_dir)): p.read_bytes()
            for p in sorted(settings.lake_dir.rglob("*")) if p.is_file()}


def test_rerun_replaces_the_partition_with_the_same_bytes(settings):
    write_landing(settings, "shop", {"orders.jsonl": order() + "\nbroken\n" + order(order_id="o2")})
    first = [r.to_dict() for r in extract_source("shop", DS, settings)]
    before = _partition_files(settings)
    second = [r.to_dict() for r in extract_source("shop", DS, settings)]
    after = _partition_files(settings)
    assert before.keys() == after.keys()
    for name, content in before.items():
        if "/load_log/" not in f"/{name}":  # the load log holds when it ran
            assert after[name] == content, name
    assert [(r["rows_in"], r["rows_out"]) for r in first] == [(r["rows_in"], r["rows_out"]) for r in second]
    assert rows(lake(settings, "raw", "shop", "orders"), "SELECT count(*) FROM t") == [(2,)]
    assert rows(lake(settings, "load_log", "shop", "orders"), "SELECT count(*) FROM t") == [(1,)]
    assert not list((settings.lake_dir / ".tmp").glob("shop-*"))


@pytest.mark.parametrize("read_back", [False, True], ids=["clean", "messy"])
def test_events_are_stored_in_line_order_and_a_rerun_stores_the_same_rows(settings, read_back,
                                                                         monkeypatch):
    # Events are staged in line order and published without a sort (a backfill's sort spilled
    # tens of GB), also when the streamed lines come in many batches; invalid UTF-8 and an
    # 8 MiB line keep their place.
    from personalization.extract import lines as line_reader

    monkeypatch.setattr(line_reader, "CHUNK_BYTES", 64 * 1024)  # many batches on two threads
    lines = [event(event_id=f"e{i}").encode() for i in range(1, 3001)]
    if read_back:
        lines[700] = b'{"event_id": "e\xe9"}'  # invalid UTF-8: quarantined
        lines[1500] = event(event_id="e-long", url="https://shop.example/?q=" + "x" * (8 * 2**20)).encode()
    write_landing(settings, "pixel", {"events.jsonl.gz": gzip.compress(b"\n".join(lines) + b"\n")})
    reports = extract_source("pixel", DS, settings)
    stored = "SELECT _line_number, event_id FROM read_parquet(getvariable('f'), file_row_number = true) ORDER BY file_row_number"

    def lake_rows():
        con = duckdb.connect()
        con.execute("SET VARIABLE f = ?", [str(lake(settings, "raw", "pixel", "events"))])
        return con.execute(stored).fetchall()

    first = lake_rows()
    expected = [(n, "e-long" if read_back and n == 1501 else f"e{n}")
                for n in range(1, 3001) if not (read_back and n == 701)]
    assert first == expected
    assert report(reports, "events").rows_quarantined == (1 if read_back else 0)
    extract_source("pixel", DS, settings)
    assert lake_rows() == first
    assert [p.name for p in (settings.lake_dir / ".tmp").iterdir() if p.name != "duckdb_spill"] == []
    assert not list((settings.lake_dir / ".tmp" / "duckdb_spill").glob("lines-*"))


def test_failed_write_leaves_the_previous_partition_intact(settings, monkeypatch):
    from personalization.extract import partition

    write_landing(settings, "crm", {})
    extract_source("crm", DS, settings)
    before = _partition_files(settings)
    write_landing(settings, "crm", {"contacts.csv": f"{CONTACT_HEADER}\n{GOOD_CONTACT}\n"
                                    + GOOD_CONTACT.replace("c1,", "c2,") + "\n"})
    real_replace = os.replace

    def dying_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(partition.os, "replace", dying_replace)
    with pytest.raises(ExtractError, match="disk full"):
        extract_source("crm", DS, settings)
    monkeypatch.setattr(partition.os, "replace", real_replace)
    assert _partition_files(settings) == before
    assert [p.name for p in (settings.lake_dir / ".tmp").iterdir() if p.name != "duckdb_spill"] == []


def test_killed_process_leaves_the_previous_partition_intact_and_nothing_readable(settings):
    write_landing(settings, "crm", {})
    extract_source("crm", DS, settings)
    before = _partition_files(settings)
    write_landing(settings, "crm", {"contacts.csv": f"{CONTACT_HEADER}\n" + GOOD_CONTACT.replace("c1,", "c2,") + "\n"})
    script = textwrap.dedent(f"""
        import os, signal
        from datetime import date
        from personalization.config import load_settings
        from personalization.extract import extract_source, partition
        # Die like an OOM kill: after the new file is fully written, right before the swap.
        partition.os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
        extract_source("crm", date.fromisoformat("{DS}"), load_settings(home={str(settings.home)!r}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    after = _partition_files(settings)
    visible = {k: v for k, v in after.items() if not k.startswith(".tmp")}
    assert visible == before  # readers' globs (raw/<source>/<table>/*/*.parquet) see the old data
    # ... and the next run cleans the staging leftovers and loads the new data
    extract_source("crm", DS, settings)
    assert rows(lake(settings, "raw", "crm", "contacts"), "SELECT contact_id FROM t") == [("c2",)]
    assert not [p for p in (settings.lake_dir / ".tmp").iterdir() if p.name.startswith("crm-")]


# --- the line reader: DuckDB splits, every line keeps its number and exact text -------------

NASTY_LINES = [b'{"a":1}', b"", b"   ", b'{"b":"caf\xc3\xa9"}', b'{"c":"\xff\xfe bad"}',
               b'"quoted, x"', b'x\x01\x02\x03\x04y', b"z" * 300, b"", b'{"d":"\xe9"}', b"last"]


@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
@pytest.mark.parametrize("chunk", [7, 64 * 1024])
def test_line_reader_keeps_every_line_number_and_text_of_a_messy_file(tmp_path, monkeypatch,
                                                                     gzipped, ending, chunk):
    """A BOM, blank lines, invalid UTF-8, control characters and a long line keep their
    numbers and text, also when chunks end inside a line (7 bytes) or a multi-byte character."""
    from personalization.extract import lines

    monkeypatch.setattr(lines, "CHUNK_BYTES", chunk)
    data = b"\xef\xbb\xbf" + ending.join(NASTY_LINES)
    path = tmp_path / "f.jsonl"
    path.write_bytes(gzip.compress(data) if gzipped else data)
    expected = [(1, '{"a":1}'), (2, ""), (3, "   "), (4, '{"b":"caf\u00e9"}'),
                (5, '{"c":"\ufffd\ufffd bad"}'), (6, '"quoted, x"'), (7, "x\x01\x02\x03\x04y"),
                (8, "z" * 300), (9, ""), (10, '{"d":"\ufffd"}'), (11, "last")]
    con = duckdb.connect(config={"threads": 2})
    with lines.streamed_lines(con, path, "s", "SELECT * FROM batch_lines"):
        assert con.execute("SELECT line_number, raw FROM s").fetchall() == expected
    assert lines.first_line(path) == '{"a":1}'
    assert con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 's'"
                       ).fetchall() == [(0,)]


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_damaged_gzip_file_fails_the_extract_with_a_clear_error(settings, damage):
    data = bytearray(gzip.compress(("\n".join(event(event_id=f"e{i}") for i in range(20000))
                                    + "\n").encode()))
    data = data[:len(data) // 2] if damage == "truncated" else data[:200] + b"x" * 64 + data[264:]
    write_landing(settings, "pixel", {"events.jsonl.gz": bytes(data)})
    with pytest.raises(ExtractError, match="cannot read landing file .*events.jsonl.gz"):
        extract_source("pixel", DS, settings)
    assert not (settings.lake_dir / "raw" / "pixel").exists()
    assert not list((settings.lake_dir / ".tmp" / "duckdb_spill").glob("lines-*"))


def test_line_reader_reads_mixed_line_endings_and_a_lone_cr(tmp_path):
    from personalization.extract import lines

    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"a":1}\n{"b":2}\r\n\n{"c":"x\ry"}\n')
    con = duckdb.connect()
    with lines.streamed_lines(con, path, "t", "SELECT * FROM batch_lines"):
        assert con.execute("SELECT * FROM t").fetchall() == [
            (1, '{"a":1}'), (2, '{"b":2}'), (3, ""), (4, '{"c":"x\ry"}')]

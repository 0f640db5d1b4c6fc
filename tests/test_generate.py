"""The realistic data generator: landing contract, determinism, ground truth, planted dirt."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from personalization.exceptions import ConfigError
from personalization.generate import corrupt as C
from personalization.generate import generate
from personalization.generate import render as R
from personalization.generate.dirt import KINDS, RATES
from personalization.generate.names import country_names
from personalization.generate.population import build_population
from personalization.generate.records import build_records
from personalization.generate.vocab import load_all

START = date(2026, 10, 1)
DAYS = 3
PERSONS = 300
DATES = [(START + timedelta(days=i)).isoformat() for i in range(DAYS)]
CSV_HEADERS = {
    ("crm", "contacts.csv"): "contact_id,email,first_name,last_name,phone,street,city,postcode,country,"
    "birth_date,gender,language,created_at,updated_at,email_opt_in,opt_in_at,unsubscribed_at",
    ("crm", "erasure_requests.csv"): "email,requested_at",
    ("shop", "customers.csv"): "customer_id,email,first_name,last_name,phone,street,city,postcode,country,"
    "created_at,updated_at",
    ("shop", "products.csv"): "sku,name,category,price,active",
}
ORDER_KEYS = ["order_id", "customer_id", "email", "ordered_at", "status", "currency", "total_amount", "items"]
EVENT_KEYS = ["event_id", "occurred_at", "anonymous_id", "customer_id", "email_sha256", "event_type", "sku",
              "campaign_id", "variant", "url", "country", "city", "device", "user_agent"]
EVENT_TYPES = {"page_view", "product_view", "add_to_cart", "checkout_start", "purchase", "login", "search",
               "email_open", "email_click"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gen")
    summary = generate(out=root / "landing", customers=PERSONS, days=DAYS, seed=7, start=START, truth_path=None)
    assert summary.startswith(f"{PERSONS} persons, {DAYS} days")
    return root


def _csv_rows(path: Path) -> tuple[list[str], list[list[str]], int]:
    """Header, rows with the right field count, and the number of rows with a wrong one."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    good = [r for r in rows if len(r) == len(header)]
    return header, good, len(rows) - len(good)


def _json_lines(path: Path) -> tuple[list[dict], int]:
    opener = gzip.open if path.suffix == ".gz" else open
    records, broken = [], 0
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                broken += 1
    return records, broken


def _ts(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")


def test_every_file_follows_the_landing_contract(generated):
    landing = generated / "landing"
    for ds in DATES:
        for (source, name), header in CSV_HEADERS.items():
            path = landing / source / ds / name
            cols, rows, _ = _csv_rows(path)
            assert ",".join(cols) == header, path
            if name == "contacts.csv":
                assert {r[14] for r in rows} <= {"true", "false", ""}
                assert all(r[12].endswith("Z") and "T" in r[12] for r in rows)
        orders, _ = _json_lines(landing / "shop" / ds / "orders.jsonl")
        assert orders
        for o in orders:
            assert list(o) == ORDER_KEYS
            assert o["status"] in {"placed", "cancelled", "refunded"}
            assert all(set(i) == {"sku", "quantity", "unit_price"} for i in o["items"])
        events, _ = _json_lines(landing / "pixel" / ds / "events.jsonl.gz")
        assert events
        for e in events:
            assert list(e) == EVENT_KEYS
            assert e["event_type"] in EVENT_TYPES
    # DuckDB reads the concatenated-gzip pixel files and the CSVs too (as the extractors will).
    con = duckdb.connect()
    n = con.execute(f"SELECT count(*) FROM read_csv('{landing}/pixel/{DATES[0]}/events.jsonl.gz', "
                    "columns={'line': 'VARCHAR'}, delim=chr(1), quote='', header=false)").fetchall()[0][0]
    assert n == sum(1 for _ in gzip.open(landing / "pixel" / DATES[0] / "events.jsonl.gz"))
    assert con.execute(f"SELECT count(*) FROM read_csv('{landing}/shop/{DATES[0]}/products.csv')").fetchall()[0][0] > 300


def test_same_seed_same_bytes_other_seed_other_bytes(generated, tmp_path):
    generate(out=tmp_path / "a" / "landing", customers=PERSONS, days=DAYS, seed=7, start=START)
    generate(out=tmp_path / "b" / "landing", customers=PERSONS, days=DAYS, seed=8, start=START)
    files = sorted(p.relative_to(generated) for p in generated.rglob("*") if p.is_file())
    assert len(files) == 6 * DAYS + 2
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (generated / rel).read_bytes(), rel
    # Small later-day files may be header-only under both seeds; the big ones must differ.
    big = [rel for rel in files if DATES[0] in str(rel) or rel.suffix in (".gz", ".parquet")]
    big = [rel for rel in big if rel.name not in ("erasure_requests.csv", "products.csv")]
    assert all((tmp_path / "b" / rel).read_bytes() != (generated / rel).read_bytes() for rel in big)


def _landing_ids(landing: Path) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = defaultdict(set)
    for ds in DATES:
        for source, name, key in (("crm", "contacts.csv", 0), ("shop", "customers.csv", 0)):
            _, rows, _ = _csv_rows(landing / source / ds / name)
            ids[source] |= {r[key] for r in rows if r[key]}
        orders, _ = _json_lines(landing / "shop" / ds / "orders.jsonl")
        ids["order"] |= {o["order_id"] for o in orders if o["order_id"]}
        events, _ = _json_lines(landing / "pixel" / ds / "events.jsonl.gz")
        ids["pixel"] |= {e["anonymous_id"] for e in events if e["anonymous_id"]}
    return ids


def test_ground_truth_matches_the_landing_files(generated):
    truth = pq.read_table(generated / "truth.parquet").to_pylist()
    assert list(truth[0]) == ["source", "source_id", "person_id"]
    by_source: dict[str, set[str]] = defaultdict(set)
    for row in truth:
        by_source[row["source"]].add(row["source_id"])
    assert len(truth) == sum(len(v) for v in by_source.values()), "one row per source record"
    landing = _landing_ids(generated / "landing")
    for source in ("crm", "shop", "order", "pixel"):
        assert landing[source] == by_source[source], source
    # Guest checkouts exist and are covered.
    orders, _ = _json_lines(generated / "landing" / "shop" / DATES[0] / "orders.jsonl")
    assert any(o["customer_id"] is None and o["order_id"] for o in orders)


def test_planted_duplicate_rate_is_near_ten_percent(generated):
    truth = pq.read_table(generated / "truth.parquet").to_pylist()
    per_person = Counter((r["person_id"], r["source"]) for r in truth if r["source"] in ("crm", "shop"))
    duplicated = {person for (person, _), n in per_person.items() if n > 1}
    assert 0.06 <= len(duplicated) / PERSONS <= 0.14


def test_first_delivery_is_a_historical_backfill(generated):
    landing = generated / "landing"
    start = datetime(START.year, START.month, START.day)
    _, contacts, _ = _csv_rows(landing / "crm" / DATES[0] / "contacts.csv")
    assert min(_ts(r[12]) for r in contacts) < start - timedelta(days=365)
    orders, _ = _json_lines(landing / "shop" / DATES[0] / "orders.jsonl")
    first_order = min(_ts(o["ordered_at"]) for o in orders if o["order_id"])
    assert first_order < start - timedelta(days=500)
    events, _ = _json_lines(landing / "pixel" / DATES[0] / "events.jsonl.gz")
    days_seen = {e["occurred_at"][:10] for e in events}
    assert (START - timedelta(days=30)).isoformat() in days_seen and DATES[0] in days_seen
    # Later deliveries hold only what happened that day (or the day before, when late), apart
    # from planted future timestamps.
    for ds in DATES[1:]:
        prev = (date.fromisoformat(ds) - timedelta(days=1)).isoformat()
        events, _ = _json_lines(landing / "pixel" / ds / "events.jsonl.gz")
        when = Counter("today" if e["occurred_at"][:10] == ds else "late" if e["occurred_at"][:10] == prev
                       else "other" for e in events)
        assert when["today"] > 0.97 * len(events)
        _, contacts, _ = _csv_rows(landing / "crm" / ds / "contacts.csv")
        assert all(r[13][:10] == ds for r in contacts)


def test_every_kind_of_dirt_is_planted_and_logged(generated):
    dirt = json.loads((generated / "truth_dirt.json").read_text())
    assert set(dirt["counts"]) == set(KINDS)
    assert all(n > 0 for n in dirt["counts"].values()), dirt["counts"]
    landing = generated / "landing"
    broken = duplicates = wrong_fields = 0
    for ds in DATES:
        events, bad = _json_lines(landing / "pixel" / ds / "events.jsonl.gz")
        ids = Counter(e["event_id"] for e in events if e["event_id"])
        duplicates += sum(n - 1 for n in ids.values())
        _, bad_orders = _json_lines(landing / "shop" / ds / "orders.jsonl")
        broken += bad + bad_orders
        for source, name in (("crm", "contacts.csv"), ("shop", "customers.csv")):
            wrong_fields += _csv_rows(landing / source / ds / name)[2]
    by_table = dirt["by_table"]
    assert broken == by_table["pixel/events"]["malformed_line"] + by_table["shop/orders"]["malformed_line"]
    assert wrong_fields == (by_table["crm/contacts"].get("malformed_line", 0)
                            + by_table["shop/customers"].get("malformed_line", 0))
    # Late events re-use no ids; every repeated event_id is a planted exact repeat.
    assert duplicates == by_table["pixel/events"]["duplicate_event_id"]
    assert dirt["junk_values"], "shared junk values (0000000000, test@test.com, 1900-01-01) planted"


def test_email_hashes_link_to_crm_contacts(generated):
    landing = generated / "landing"
    hashes = set()
    for ds in DATES:
        _, rows, _ = _csv_rows(landing / "crm" / ds / "contacts.csv")
        hashes |= {hashlib.sha256(r[1].strip().lower().encode()).hexdigest() for r in rows if r[1]}
    events, _ = _json_lines(landing / "pixel" / DATES[0] / "events.jsonl.gz")
    mail = [e for e in events if e["event_type"] in ("email_open", "email_click")]
    assert mail and all(e["email_sha256"] in hashes and e["variant"] in ("A", "B") for e in mail)
    assert any(e["event_type"] == "login" and e["customer_id"] for e in events)


def test_truth_must_not_live_inside_the_landing_dir(tmp_path):
    with pytest.raises(ConfigError, match="must not be inside"):
        generate(out=tmp_path / "landing", customers=10, days=1, seed=1, start=START,
                 truth_path=tmp_path / "landing" / "truth.parquet")


def test_planted_event_dirt_follows_its_rates(generated):
    """Each kind of pixel dirt is planted near its documented rate (binomial tolerance)."""
    dirt = json.loads((generated / "truth_dirt.json").read_text())
    lines = sum(1 for ds in DATES for _ in gzip.open(generated / "landing" / "pixel" / ds / "events.jsonl.gz"))
    planted = dirt["by_table"]["pixel/events"]
    for kind in ("duplicate_event_id", "future_timestamp", "missing_key", "malformed_line"):
        expected = RATES[kind] * lines
        assert abs(planted[kind] - expected) < 5 * expected**0.5 + 2, (kind, planted[kind], expected)


@pytest.fixture(scope="module")
def population() -> duckdb.DuckDBPyConnection:
    """20,000 persons and their CRM/shop records (no events): enough for rate checks."""
    con = duckdb.connect()
    start_s = int(datetime(START.year, START.month, START.day).timestamp())
    pop = build_population(con, load_all(7), 20_000, DAYS, start_s // 86400, 7)
    con.execute("CREATE TABLE person_names AS SELECT person, first_name, last_name, surname1, country FROM persons")
    build_records(con, pop, 7, start_s)
    con.execute("""
        CREATE TABLE records AS
        SELECT 'crm' AS source, rid, person, cls, fn_mode, ln_mode, birth_mode, addr_mode, phone_mode, email_mode,
               first_name, last_name, email, phone, street, postcode, junk_kind FROM crm_contacts
        UNION ALL
        SELECT 'shop', rid, person, cls, fn_mode, ln_mode, birth_mode, addr_mode, phone_mode, email_mode,
               first_name, last_name, email, phone, street, postcode, junk_kind FROM shop_accounts
    """)
    return con


def test_record_corruptions_follow_their_rates(population):
    """Every corruption kind is drawn at its documented rate for its record class."""
    con = population
    checks = [("fn_mode IN (1, 2)", "first_typo"), ("fn_mode = 6", "first_missing"),
              ("fn_mode IN (4, 5)", "first_initial"), ("ln_mode IN (1, 2)", "last_typo"),
              ("addr_mode = 1", "moved"), ("addr_mode = 2", "address_missing"),
              ("phone_mode = 1", "phone_missing"), ("email_mode = 2", "email_other"),
              ("birth_mode = 2", "birth_day_month_swapped")]
    for cls in (C.PRIMARY_SHOP, C.DUPLICATE, C.STALE_DUPLICATE):
        n = con.execute(f"SELECT count(*) FROM records WHERE cls = {cls}").fetchone()[0]
        assert n > 300, cls
        for condition, kind in checks:
            if kind.startswith("birth"):  # CRM only: shop accounts have no birth date
                n_kind = con.execute(f"SELECT count(*) FROM records WHERE cls = {cls} AND source = 'crm'").fetchone()[0]
                seen = con.execute(f"SELECT count(*) FROM records WHERE cls = {cls} AND source = 'crm' "
                                   f"AND {condition}").fetchone()[0]
            else:
                n_kind = n
                seen = con.execute(f"SELECT count(*) FROM records WHERE cls = {cls} AND {condition}").fetchone()[0]
            p = C.RATES[kind][cls]
            assert abs(seen - p * n_kind) <= 5 * (p * (1 - p) * n_kind) ** 0.5 + 1, (C.CLASSES[cls], kind, seen, p * n_kind)


def test_corruptions_reach_the_written_values(population):
    con = population
    # A missing first name is empty (unless first and last were swapped).
    assert con.execute("SELECT count(*) FROM records WHERE fn_mode = 6 AND first_name IS NOT NULL "
                       "AND last_name IS NOT NULL").fetchone()[0] <= 0.05 * con.execute(
        "SELECT count(*) FROM records WHERE fn_mode = 6").fetchone()[0]
    # Spanish records that dropped the second surname carry only the first one.
    es = con.execute("""SELECT count(*), count(*) FILTER (lower(trim(r.last_name)) = lower(p.surname1))
                        FROM records r JOIN person_names p USING (person)
                        WHERE r.ln_mode = 7 AND p.country = 'ES'""").fetchone()
    assert es[0] > 20 and es[1] >= 0.85 * es[0]
    # Stale duplicates share no e-mail, no phone and no address with the person's current
    # (primary CRM) record; two records from the same old period may share the old ones.
    shared = con.execute("""
        WITH r AS (SELECT *, lower(trim(email)) AS e, regexp_replace(phone, '[^0-9]', '', 'g') AS ph,
                          lower(street) || '|' || postcode AS addr FROM records WHERE junk_kind = 0)
        SELECT count(DISTINCT a.source || a.rid), count(DISTINCT a.source || a.rid) FILTER (
                   a.e = b.e OR right(a.ph, 8) = right(b.ph, 8) OR a.addr = b.addr)
        FROM r a JOIN r b ON a.person = b.person AND b.cls = 0
        WHERE a.cls = 3
    """).fetchone()
    assert shared[0] > 200 and shared[1] <= 0.01 * shared[0], shared


def _namesake_share(con: duckdb.DuckDBPyConnection, table: str) -> float:
    """Share of persons whose full name (in their country) is borne by another person too."""
    return con.execute(f"""SELECT avg((k > 1)::DOUBLE) FROM (
                             SELECT count(*) OVER (PARTITION BY country, first_name, last_name) AS k
                             FROM {table})""").fetchone()[0]


def test_namesakes_grow_with_population(population):
    """Common names make namesakes (different persons, same full name) more frequent as the
    population grows, as in a real population."""
    small = duckdb.connect()
    build_population(small, load_all(7), 2_000, 1, 20_000, 7)
    share_small, share_large = _namesake_share(small, "persons"), _namesake_share(population, "person_names")
    assert 0 < share_small < share_large, (share_small, share_large)


def test_name_frequencies_match_their_calibration():
    us, es = country_names("US"), country_names("ES")
    last = us["last"]
    top = int(np.argmax(last.p))
    assert last.values[top] == "Smith" and abs(last.p[top] - 0.0083) < 0.0005
    assert abs(np.sort(last.p)[::-1][:1000].sum() - 0.40) < 0.05  # US census: top 1,000 ~ 40 %
    assert abs(us["first_male"].p[0] - 0.033) < 0.002 and us["first_male"].values[0] == "James"
    assert es["last"].values[int(np.argmax(es["last"].p))] == "García"
    assert abs(np.sort(es["last"].p)[::-1][:10].sum() - 0.175) < 0.02  # INE: top ten ~ 17.5 %
    for names in (*us.values(), *es.values()):
        assert abs(names.p.sum() - 1) < 1e-9 and (names.p > 0).all()


def test_rendered_text_is_valid_json_values():
    """The Arrow-based renderer escapes strings and formats amounts and times like json/strftime."""
    values = pa.array(['plain', 'O"Brien \\ Co', None], pa.string())
    quoted = R.with_null(R.json_quote(values)).to_pylist()
    assert [json.loads(q) for q in quoted] == ["plain", 'O"Brien \\ Co', None, None]
    assert R.money_text(np.array([12.5, -3.99, 0.004, 1234.0])).to_pylist() == ["12.50", "-3.99", "0.00", "1234.00"]
    seconds = np.array([0, 1_790_000_000 + 3661], dtype=np.int64)
    date_, hms = R.iso_pieces(seconds)
    assert [f"{d}T{t}Z" for d, t in zip(date_.to_pylist(), hms.to_pylist(), strict=True)] == [
        datetime.fromtimestamp(int(s), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for s in seconds]
    ids = R.uuid_text(7, 1, np.arange(1000)).to_pylist()
    assert len(set(ids)) == 1000 and all(len(i) == 36 and i.count("-") == 4 for i in ids)
    assert ids == R.uuid_text(7, 1, np.arange(1000)).to_pylist() != R.uuid_text(8, 1, np.arange(1000)).to_pylist()


@pytest.mark.parametrize("gz", [False, True])
def test_chunks_rendered_in_threads_are_written_in_order_with_the_splices(tmp_path, monkeypatch, gz):
    """write_lines renders chunks on several threads ahead of the writer: the file must be
    the rows in order with the raw lines spliced in, whatever the chunking."""
    from personalization.generate import writers as W

    monkeypatch.setattr(W, "MIN_CHUNK_ROWS", 7)
    monkeypatch.setattr(W, "CHUNK_ROWS", 13)
    n = 1000

    def render(lo, hi):
        return pa.array([f"row {i}\n" for i in range(lo, hi)], pa.string())

    rng = np.random.default_rng(5)
    path = tmp_path / ("f.jsonl.gz" if gz else "f.jsonl")
    with W.LandingFile(None, path, "json") as f:
        f.write_lines(render, n, ["raw a", "raw b", "raw c", "raw d"], rng)
    text = (gzip.decompress(path.read_bytes()) if gz else path.read_bytes()).decode()
    lines = text.splitlines()
    assert [x for x in lines if x.startswith("row")] == [f"row {i}" for i in range(n)]
    assert sorted(x for x in lines if x.startswith("raw")) == ["raw a", "raw b", "raw c", "raw d"]
    assert len(lines) == n + 4
    cuts = sorted(int(c) for c in np.random.default_rng(5).integers(0, n + 1, 3))
    assert lines.index("raw a") == cuts[0]  # spliced where the rng put it, not at a chunk edge

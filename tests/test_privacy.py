"""The one email rule, against email-validator as the oracle, in Python, SQL and dbt; the
erasure matching's distinct-value shortcut against hashing every value.

The end-to-end privacy checks (erasure everywhere, portal, re-delivery, subject access,
retention) reuse the one generated run of tests/test_e2e.py and live there."""

from __future__ import annotations

import duckdb
import pytest

from personalization.config import load_settings
from personalization.privacy import email_sha256, is_valid_email, valid_email_sql

# Hard cases for the one email rule; the oracle is email-validator (strict, no DNS).
HARD_EMAILS = [
    "a@b.co", "A.B+tag@Example.COM", "a..b@x.com", ".a@x.com", "a.@x.com", "a@x", "a@-x.com",
    "a@x-.com", "a@x..com", "a@x.c", "a@x.c1", "a@x.123", "a@[1.2.3.4]", '"a b"@x.com',
    "a b@x.com", "a@b@x.com", "müller@example.de", "a@müller.de", "a@x.local", "a@x.test",
    "a@localhost", "a@example.com", "o'brien@x.ie", "a!#$%&'*+/=?^_`{|}~-@x.com",
    "x" * 64 + "@x.com", "x" * 65 + "@x.com", "a@" + "b" * 63 + ".com", "a@" + "b" * 64 + ".com",
    "a@x.xn--p1ai", "a@x.рф", "a@x.onion", "a@x.arpa", "a@sub.x.co.uk", "a@1.2.3.4",
    "a@x_y.com", "a,b@x.com", "a@x.com.", "中文@x.com", "a@x.co m", "a@x.c-m", "a@x.COM",
    "a\t@x.com", "(comment)a@x.com", "a@x.com;b@y.com", "first.last@sub-domain.example.org",
    "a" * 60 + "@" + ".".join(["b" * 60] * 3) + ".com", "user@xn--mller-kva.de", "",
]


def _oracle(value: str) -> bool:
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(value, check_deliverability=False, strict=True)
        return True
    except EmailNotValidError:
        return False


def test_one_email_rule_agrees_with_email_validator_in_python_and_sql():
    expected = [_oracle(e) for e in HARD_EMAILS]
    assert [is_valid_email(e) for e in HARD_EMAILS] == expected
    con = duckdb.connect()
    con.execute("CREATE TABLE e (i INTEGER, email VARCHAR)")
    con.executemany("INSERT INTO e VALUES (?, ?)", list(enumerate(HARD_EMAILS)))
    sql = [r[0] for r in con.execute(f"SELECT {valid_email_sql('email')} FROM e ORDER BY i").fetchall()]
    assert sql == expected
    assert not is_valid_email(None)
    assert email_sha256("  Ann@Example.COM ") == email_sha256("ann@example.com")


def test_dbt_macro_renders_the_same_rule(tmp_path):
    """The staging macro and the Python rule come from the same vars: same answers."""
    from tests.dbt_inline import compiled_inline

    values = ", ".join("('" + e.replace("'", "''") + "')" for e in HARD_EMAILS)
    compiled = compiled_inline(
        f"select email, {{{{ is_valid_email('email') }}}} as ok from (values {values}) t(email)", tmp_path)
    rows = dict(duckdb.sql(compiled).fetchall())
    assert [rows[e] for e in HARD_EMAILS] == [is_valid_email(e) for e in HARD_EMAILS]


def test_distinct_value_matching_finds_the_same_rows_and_lines_as_hashing_each_one():
    """The erasure scans hash each distinct key value (or token) once; they must select exactly
    the rows (lines) that hashing every row's values (every token) selects, NULLs included."""
    from personalization.privacy.matching import (
        TOKEN_KEYS,
        TOKEN_SPLIT,
        erased_condition,
        raw_hits_sql,
    )

    con = duckdb.connect()
    con.execute("""CREATE TABLE events AS SELECT i AS n,
                       CASE WHEN i % 7 = 0 THEN NULL ELSE 'c' || (i % 50) END AS anonymous_id,
                       CASE WHEN i % 3 = 0 THEN NULL ELSE (i % 40)::VARCHAR END AS customer_id,
                       CASE WHEN i % 5 = 0 THEN 'P' || (i % 9) || '@X.com ' END AS email,
                       CASE WHEN i % 11 = 0 THEN 'shop' ELSE 'crm' END AS source,
                       (i % 30)::VARCHAR AS source_id
                   FROM range(2000) r(i)""")
    con.execute("""CREATE TABLE keys AS
                   SELECT sha256('pixel:c7') AS key_sha256, 'record' AS key_kind
                   UNION ALL SELECT sha256('shop:13'), 'record'
                   UNION ALL SELECT sha256('crm:21'), 'record'
                   UNION ALL SELECT sha256('p4@x.com'), 'email'""")
    columns = ["n", "anonymous_id", "customer_id", "email", "source", "source_id"]
    per_row = erased_condition(columns, ledger="keys")
    distinct = erased_condition(columns, ledger="keys", source="events")
    rows = [con.execute(f"SELECT list(n ORDER BY n) FROM events WHERE {c}").fetchone()[0]
            for c in (per_row, distinct)]
    assert rows[0] == rows[1] and 100 < len(rows[0]) < 1900

    con.execute("""CREATE TABLE lines AS SELECT n AS line_number,
                       '{"anonymous_id":"' || coalesce(anonymous_id, '') || '","customer_id":' ||
                       coalesce(customer_id, 'null') || ',"email":"' || coalesce(email, '') || '"}' AS raw
                   FROM events""")
    tries = " OR ".join(f"({sql}) IN (SELECT key_sha256 FROM keys WHERE key_kind = '{kind}')"
                        for kind, sql in TOKEN_KEYS)
    every_token = con.execute(f"""
        SELECT list(DISTINCT line_number ORDER BY line_number) FROM (
            SELECT line_number, unnest(regexp_split_to_array(raw, '{TOKEN_SPLIT}')) AS t FROM lines)
        WHERE t <> '' AND ({tries})""").fetchone()[0]
    found = sorted(r[0] for r in con.execute(raw_hits_sql("lines", "raw", "line_number", "keys")).fetchall())
    assert found == every_token and len(found) > 50


def test_scans_scoped_to_the_ledgers_kinds_find_the_same_rows_and_skip_the_other_tables():
    """`erase` scans only the columns and tokens of the kinds of key pending: a night whose
    only new keys are orders arriving for a person erased earlier must not read every copy
    (events, contacts, exports), and must remove the same rows as an unscoped scan."""
    from personalization.privacy.matching import (
        erased_condition,
        ledger_kinds,
        raw_hits_sql,
        tokens_can_match,
    )

    con = duckdb.connect()
    con.execute("""CREATE TABLE rows AS SELECT i AS n, 'c' || (i % 50) AS anonymous_id,
                       (i % 40)::VARCHAR AS customer_id, 'o' || (i % 60) AS order_id,
                       'u' || (i % 30) AS unified_id
                   FROM range(1000) r(i)""")
    con.execute("""CREATE TABLE lines AS SELECT n AS line_number,
                       '{"anonymous_id":"' || anonymous_id || '","order_id":"' || order_id || '"}' AS raw
                   FROM rows""")
    columns = ["n", "anonymous_id", "customer_id", "order_id", "unified_id"]
    ledgers = {
        "orders only": "SELECT sha256('order:o7') AS key_sha256, 'order' AS key_kind",
        "every kind": """SELECT sha256('order:o7') AS key_sha256, 'order' AS key_kind
                         UNION ALL SELECT sha256('pixel:c3'), 'record'
                         UNION ALL SELECT sha256('unified:u11'), 'unified'""",
        "persons only": "SELECT sha256('unified:u11') AS key_sha256, 'unified' AS key_kind",
    }
    for name, keys in ledgers.items():
        con.execute(f"CREATE OR REPLACE TABLE keys AS {keys}")
        kinds = ledger_kinds(con, "keys")
        picked = [con.execute(f"SELECT list(n ORDER BY n) FROM rows WHERE {c}").fetchone()[0]
                  for c in (erased_condition(columns, ledger="keys", source="rows"),
                            erased_condition(columns, ledger="keys", source="rows", kinds=kinds))]
        assert picked[0] == picked[1] and picked[0], name
        if tokens_can_match(kinds):
            found = [sorted(r[0] for r in con.execute(
                raw_hits_sql("lines", "raw", "line_number", "keys", k)).fetchall()) for k in (None, kinds)]
            assert found[0] == found[1] and found[0], name
    # Orders only: a table without an order column is not scanned at all.
    con.execute(f"CREATE OR REPLACE TABLE keys AS {ledgers['orders only']}")
    kinds = ledger_kinds(con, "keys")
    assert kinds == {"order"}
    assert erased_condition(["anonymous_id", "unified_id", "email"], ledger="keys", kinds=kinds) is None
    assert erased_condition(["anonymous_id", "unified_id", "email"], ledger="keys") is not None
    # Person ids never appear in a raw line's tokens: a ledger of them reads no line.
    assert not tokens_can_match({"unified"}) and tokens_can_match({"order"})



def _physical_lines(path) -> list[bytes]:
    import gzip

    data = path.read_bytes()
    return (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).split(b"\n")


def _non_blank_lines(root) -> dict[str, list[str]]:
    """Each file's non-blank lines, as the extract reads them (BOM, trailing CR removed)."""
    import gzip

    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        text = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode("utf-8", "replace")
        out[path.relative_to(root).as_posix()] = [
            x.removesuffix("\r") for x in text.removeprefix("\ufeff").split("\n") if x.strip()]
    return out


def test_landing_lines_by_line_number_leave_exactly_what_token_matching_leaves(tmp_path, monkeypatch):
    """The erase night blanks landing lines by the line numbers of the erased rows in the lake
    and quarantine; it must remove every line that token matching of every CRM, shop and pixel
    file removes (the oracle), also in a file whose numbers no longer match (a line dropped
    before the erased ones, as an older version's redaction did: that file, and only it, falls
    back to tokens), and keep the other lines' numbers (a rerun of the extract loads the same
    rows but the erased ones)."""
    import gzip
    import shutil
    from datetime import date

    from personalization.extract.runner import extract_source
    from personalization.generate import generate
    from personalization.privacy import redact
    from personalization.privacy.matching import erased_condition

    days = [date(2026, 9, 1), date(2026, 9, 2)]
    generate(out=tmp_path / "landing", customers=60, days=2, seed=7, start=days[0],
             truth_path=tmp_path / "truth.parquet")
    settings = load_settings(home=tmp_path / "home", landing_dir=tmp_path / "landing",
                             lake_dir=tmp_path / "lake")
    for ds in days:
        for source in ("crm", "shop", "pixel"):
            extract_source(source, ds, settings)
    raw = settings.lake_dir / "raw"
    con = duckdb.connect()
    con.execute(f"""CREATE TABLE erased AS SELECT DISTINCT email FROM
                    read_parquet('{raw}/crm/contacts/*/*.parquet') WHERE email IS NOT NULL
                    ORDER BY email LIMIT 6""")
    con.execute(f"""CREATE TABLE ids AS
        SELECT 'crm:' || contact_id AS k FROM read_parquet('{raw}/crm/contacts/*/*.parquet')
            WHERE email IN (SELECT email FROM erased)
        UNION SELECT 'shop:' || customer_id FROM read_parquet('{raw}/shop/customers/*/*.parquet')
            WHERE email IN (SELECT email FROM erased)""")
    con.execute(f"""CREATE TABLE keys AS
        SELECT sha256(lower(trim(email))) AS key_sha256, 'email' AS key_kind FROM erased
        UNION SELECT sha256(k), 'record' FROM ids
        UNION SELECT sha256('pixel:' || anonymous_id), 'record'
            FROM read_parquet('{raw}/pixel/events/*/*.parquet')
            WHERE 'shop:' || customer_id IN (SELECT k FROM ids) AND anonymous_id IS NOT NULL
        UNION SELECT sha256('order:' || order_id), 'order'
            FROM read_parquet('{raw}/shop/orders/*/*.parquet')
            WHERE 'shop:' || customer_id IN (SELECT k FROM ids) OR email IN (SELECT email FROM erased)""")
    landing = settings.landing_dir
    oracle_landing = tmp_path / "landing_tokens"
    shutil.copytree(landing, oracle_landing)
    oracle_settings = settings.model_copy(update={"landing_dir": oracle_landing})
    oracle = redact.landing_files(con, oracle_settings, "keys", [
        *redact.landing_person_files(oracle_settings), *oracle_landing.glob("pixel/*/events.jsonl.gz")])
    removed = {e["path"].split("landing_tokens/")[-1]: e["rows_removed"] for e in oracle}
    assert sum(removed.values()) > 20 and any(p.startswith("pixel/") for p in removed)
    # Token matching blanks the lines too: every other line keeps its number and its bytes.
    for path, count in removed.items():
        before, after = (_physical_lines(root / path) for root in (landing, oracle_landing))
        assert len(after) == len(before)
        changed = [a for b, a in zip(before, after, strict=True) if b != a]
        assert changed == [b""] * count
    expected = _non_blank_lines(oracle_landing)

    # An older version's redaction dropped lines: drop the first line (not the person's) of a
    # file holding erased lines, so every later line number is off by one.
    shifted = next(p for p in sorted(removed) if p.startswith("pixel/"))
    lines = gzip.decompress((landing / shifted).read_bytes()).split(b"\n")
    assert lines[0].decode() == expected[shifted][0]
    (landing / shifted).write_bytes(gzip.compress(b"\n".join(lines[1:])))
    expected[shifted] = expected[shifted][1:]

    by_tokens, fallback = redact.landing_files, []
    monkeypatch.setattr(redact, "landing_files", lambda con, s, keys, files: (
        fallback.extend(files), by_tokens(con, s, keys, files))[1])
    redact.lake_hits(con, settings, "keys", lines=True)
    redact.quarantine_hits(con, settings, "keys")
    changed = redact.landing_lines(con, settings, "keys", redact.landing_person_files(settings))
    assert _non_blank_lines(landing) == expected
    assert {e["path"].split("landing/")[-1]: e["rows_removed"] for e in changed} == removed
    assert [p.relative_to(landing).as_posix() for p in fallback] == [shifted]

    day = next(d.isoformat() for d in days if d.isoformat() not in shifted)
    events = f"read_parquet('{raw}/pixel/events/ds={day}/*.parquet')"
    columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {events}").fetchall()]
    kept = con.execute(f"SELECT * FROM {events} WHERE NOT {erased_condition(columns, ledger='keys')} "
                       "ORDER BY _line_number").fetchall()
    extract_source("pixel", date.fromisoformat(day), settings)
    assert con.execute(f"SELECT * FROM {events} ORDER BY _line_number").fetchall() == kept


def _blank_in_memory(data: bytes, lines: dict[int, list[str]]) -> bytes | None:
    """The reference: the whole text split at once (what `_blank_lines` did before streaming)."""
    import re

    from personalization.privacy.matching import TOKEN_SPLIT
    from personalization.privacy.redact import _carries

    text = data.split(b"\n")
    for number, witnesses in lines.items():
        if number > len(text):
            return None
        tokens = set(re.split(TOKEN_SPLIT, text[number - 1].decode("utf-8", errors="replace")))
        if not all(_carries(tokens, w) for w in witnesses):
            return None
    for number in lines:
        text[number - 1] = b""
    return b"\n".join(text)


@pytest.mark.parametrize("chunk", [1, 5, 64, 1 << 20])
@pytest.mark.parametrize("gzipped", [False, True])
def test_streamed_line_blanking_equals_blanking_the_whole_text(tmp_path, monkeypatch, chunk, gzipped):
    # Chunks of every size against the in-memory reference: lines at chunk edges, CRLF, invalid
    # UTF-8, an unterminated last line, a witness that fails (file untouched), a line past the end.
    import gzip
    import random

    from personalization.privacy import redact

    monkeypatch.setattr(redact, "_CHUNK_BYTES", chunk)
    rng = random.Random(chunk)
    for case in range(12):
        body = [f"e{n} id{n} x@y.z".encode() + (b"\r" if n % 7 == 0 else b"") for n in range(1, 40)]
        body[4] = b"bad \xff bytes id5"
        data = b"\n".join(body) + (b"\n" if case % 2 else b"")
        count = data.count(b"\n") + 1
        wanted = rng.sample(range(1, 40), 5)
        lines = {n: [f"id{n}"] for n in wanted}
        if case % 4 == 3:
            lines[wanted[0]] = ["not-on-that-line"]
        if case % 6 == 5:
            lines[count + 1] = []
        path = tmp_path / f"f{case}.jsonl{'.gz' if gzipped else ''}"
        path.write_bytes(gzip.compress(data, mtime=0) if gzipped else data)
        before = path.read_bytes()
        expected = _blank_in_memory(data, lines)
        result = redact._blank_lines(path, lines)
        if expected is None:
            assert result is None and path.read_bytes() == before
        else:
            assert result == len(lines)
            stored = path.read_bytes()
            assert (gzip.decompress(stored) if gzipped else stored) == expected
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_rewritten_file_under_a_ds_folder_keeps_its_own_columns(tmp_path):
    """DuckDB reads a file under `ds=<date>` with one more column, `ds` (hive
    partitioning). Redaction wrote it back into every lake, quarantine and scores file it
    rewrote (found when a kept scoring state read after an erasure night had four columns,
    not three). A rewrite keeps the file's own columns, and drops a `ds` stored that way."""
    from personalization.privacy import redact

    settings = load_settings(home=tmp_path / "home", esp_targets=[])
    con = duckdb.connect()
    files = []
    for day, stored_ds in (("2026-04-01", False), ("2026-04-02", True)):
        path = settings.scores_dir / f"ds={day}" / "customer_scores.parquet"
        path.parent.mkdir(parents=True)
        extra = f", date '{day}' as ds" if stored_ds else ""
        con.execute(f"copy (select 'p' || range as unified_id, range as v{extra} from range(5)) "
                    f"to '{path}' (format parquet)")
        files.append(path)
    con.execute("create table keys as select 'unified' as key_kind, "
                "sha256('unified:p3') as key_sha256")
    changed = redact.parquet_files(con, settings, files, "keys")
    assert [c["rows_removed"] for c in changed] == [1, 1]
    for path in files:
        columns = [r[0] for r in con.execute(
            f"describe select * from read_parquet('{path}', hive_partitioning = false)").fetchall()]
        assert columns == ["unified_id", "v"], path
        assert con.execute(f"select list(unified_id order by v) from read_parquet('{path}', "
                           "hive_partitioning = false)").fetchone()[0] == ["p0", "p1", "p2", "p4"]

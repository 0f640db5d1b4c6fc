"""The one email rule, against email-validator as the oracle, in Python, SQL and dbt; the
erasure matching's distinct-value shortcut against hashing every value.

The end-to-end privacy checks (erasure everywhere, portal, re-delivery, subject access,
retention) reuse the one generated run of tests/test_e2e.py and live there."""

from __future__ import annotations

import duckdb

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
    from dbt.cli.main import dbtRunner

    values = ", ".join("('" + e.replace("'", "''") + "')" for e in HARD_EMAILS)
    settings = load_settings(home=tmp_path)
    settings.home.mkdir(parents=True, exist_ok=True)
    from personalization.warehouse.dbt import dbt_environment

    inline = f"select email, {{{{ is_valid_email('email') }}}} as ok from (values {values}) t(email)"
    with dbt_environment(settings):
        result = dbtRunner().invoke([
            "--quiet", "compile", "--inline", inline, "--project-dir", str(settings.project_dir),
            "--profiles-dir", str(settings.project_dir), "--target-path",
            str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")])
    assert result.success, result.exception
    compiled = result.result.results[0].node.compiled_code
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

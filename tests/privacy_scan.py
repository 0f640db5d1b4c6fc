"""Test helper: who was erased, and where any of their identifiers can still be read.

`erased_identifiers` reads the warehouse *before* the erasure step (who the product decided
is erased: `customer_profiles.is_erased`, their records in `identity_map`) and the lake
rows of those records: their emails, phones and full names. Values that records of people
who were not erased also carry (a shared office address, a common name) are left out: they
are not the erased person's to erase. `scan_home` then reads every file under a home with
the reader its format needs (Parquet and DuckDB through DuckDB, with the key when encrypted;
CSV/JSON/text, gzip included, as text) and reports each file still holding one of them.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb

from personalization.privacy import encryption

TEXT_SUFFIXES = {".csv", ".json", ".jsonl", ".txt", ".log", ".md", ".html", ".yml", ".yaml",
                 ".sql", ".gz"}


def _connect(settings) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    encryption.configure(con, settings)
    return con


def erased_identifiers(settings) -> dict[str, set[str]]:
    """{"email": {...}, "phone": {...}, "name": {"first last", ...}} of erased persons."""
    lake = settings.lake_dir / "raw"
    opts = encryption.parquet_read_options(settings)
    con = encryption.connect_warehouse(settings, read_only=True)
    try:
        encryption.configure(con, settings)
        con.execute(f"""
            CREATE TEMP TABLE records AS
            SELECT 'crm' AS source, contact_id AS source_id, email, phone, first_name, last_name
            FROM read_parquet('{lake}/crm/contacts/*/part-0.parquet'{opts})
            UNION ALL
            SELECT 'shop', customer_id, email, phone, first_name, last_name
            FROM read_parquet('{lake}/shop/customers/*/part-0.parquet'{opts})""")
        con.execute("""
            CREATE TEMP TABLE flagged AS
            SELECT r.*, coalesce(p.is_erased, false) AS is_erased
            FROM records r
            LEFT JOIN identity_map m ON m.source = r.source AND m.source_id = r.source_id
            LEFT JOIN customer_profiles p ON p.unified_id = m.unified_id""")
        out = {}
        for kind, expr in (("email", "lower(trim(email))"), ("phone", "trim(phone)"),
                           ("name", "trim(first_name) || ' ' || trim(last_name)")):
            out[kind] = {r[0] for r in con.execute(f"""
                SELECT v FROM (SELECT {expr} AS v, is_erased FROM flagged)
                WHERE v IS NOT NULL AND length(v) > 5
                GROUP BY v HAVING bool_and(is_erased)""").fetchall()}
        guests = con.execute("""
            SELECT DISTINCT source_id FROM identity_map m JOIN customer_profiles p USING (unified_id)
            WHERE m.source = 'guest' AND p.is_erased""").fetchall()
        out["email"] |= {g[0] for g in guests}
    finally:
        con.close()
    return out


def _texts(path: Path, settings) -> list[str]:
    """Readable text of one file (one string per row for tables)."""
    if path.suffix == ".parquet":
        with _connect(settings) as con:
            try:
                rel = f"read_parquet('{path}'{encryption.parquet_read_options(settings)})"
                return [r[0] for r in con.execute(f"SELECT CAST(t AS VARCHAR) FROM {rel} t").fetchall()]
            except duckdb.Error:  # not one of ours (e.g. written unencrypted): read plainly
                return [r[0] for r in con.execute(
                    f"SELECT CAST(t AS VARCHAR) FROM read_parquet('{path}') t").fetchall()]
    if path.suffix == ".duckdb":
        con = (encryption.connect_warehouse(settings, read_only=True)
               if path == settings.warehouse_path else duckdb.connect(str(path), read_only=True))
        try:
            rows = []
            for (schema, table) in con.execute(
                    "SELECT table_schema, table_name FROM information_schema.tables "
                    "WHERE table_catalog = current_database()").fetchall():
                rows += [r[0] for r in con.execute(
                    f'SELECT CAST(t AS VARCHAR) FROM "{schema}"."{table}" t').fetchall()]
            return rows
        finally:
            con.close()
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return [data.decode("utf-8", errors="replace")]


def scan_home(settings, identifiers: dict[str, set[str]],
              skip: tuple[Path, ...] = ()) -> dict[str, set[str]]:
    """{relative file: {kind:value, ...}} for every file still holding an identifier."""
    hits: dict[str, set[str]] = {}
    for path in sorted(settings.home.rglob("*")):
        if not path.is_file() or path in skip or "dbt_target" in path.parts:
            continue
        if path.suffix not in TEXT_SUFFIXES | {".parquet", ".duckdb"}:
            continue
        found = set()
        for text in _texts(path, settings):
            low = text.lower()
            for kind, values in identifiers.items():
                found |= {f"{kind}:{v}" for v in values if v.lower() in low}
        if found:
            hits[path.relative_to(settings.home).as_posix()] = found
    return hits


def a_loaded_contact_line(settings, erased_emails: set[str]) -> str:
    """A CRM landing line the extract loaded (found by its lake row's line number), of a
    person who is not erased and whose email is none of `erased_emails`."""
    lake = settings.lake_dir / "raw" / "crm" / "contacts"
    con = encryption.connect_warehouse(settings, read_only=True)
    try:
        encryption.configure(con, settings)
        rows = con.execute(f"""
            SELECT regexp_extract(c.filename, 'ds=([^/]+)', 1), c._line_number, lower(trim(c.email))
            FROM read_parquet('{lake}/*/part-0.parquet', filename = true
                              {encryption.parquet_read_options(settings)}) c
            JOIN identity_map m ON m.source = 'crm' AND m.source_id = c.contact_id
            JOIN customer_profiles p USING (unified_id)
            WHERE NOT p.is_erased ORDER BY 1, 2 LIMIT 100""").fetchall()
    finally:
        con.close()
    ds, number, _ = next(r for r in rows if r[2] not in erased_emails)
    data = (settings.landing_dir / "crm" / ds / "contacts.csv").read_bytes()
    return data.split(b"\n")[number].decode()  # data line n is the file's line n + 1


def an_erased_contact_line(settings) -> tuple[str, str] | None:
    """(header, line) of a CRM landing line of a person flagged erased: a re-delivery."""
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    ids = {r[0] for r in con.execute("""SELECT m.source_id FROM identity_map m
        JOIN customer_profiles p USING (unified_id) WHERE p.is_erased AND m.source = 'crm'""").fetchall()}
    con.close()
    for path in sorted(settings.landing_dir.glob("crm/*/contacts.csv")):
        lines = path.read_text().splitlines()
        for line in lines[1:]:
            if line.split(",", 1)[0] in ids:
                return lines[0], line
    return None

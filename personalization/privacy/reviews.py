"""Erasure requests held for review (docs/privacy.md, "A request for a shared address").

A request names an address; when the records of more than one person carry it (a role or
shared address such as `info@<company>`), it does not say which of them asked, and carrying
it out would erase all of them (1,864 persons for one address on the 1M harness). The
warehouse then holds it (`int_customers__erasure_requests.status = 'held_for_review'`): the
address is suppressed in every export, deleted at the ESPs and left out of every golden
record at once, and no person is erased until an operator confirms the request here.

Confirmations are hashes in `<home>/privacy/erasure_confirmations.parquet`; they reach the
models as the dbt var `erasure_confirmed_email_sha256`, so the next night erases every
person carrying the address, as any other request.
"""

from __future__ import annotations

import logging
import re
from datetime import date
from pathlib import Path

import duckdb

from personalization import lake
from personalization.config import Settings
from personalization.exceptions import PersonalizationError
from personalization.observability import log_event
from personalization.privacy import encryption
from personalization.privacy.emails import email_sha256, email_sha256_sql
from personalization.privacy.ledger import privacy_dir, read_parquet_sql, write_parquet_atomic
from personalization.sql import literal

MODEL = "int_customers__erasure_requests"
HELD = "held_for_review"
_SHA256 = re.compile(r"[0-9a-f]{64}")
logger = logging.getLogger(__name__)


class ErasureReviewError(PersonalizationError):
    """A confirmation that cannot be recorded (no such held request, no warehouse yet)."""


def confirmations_path(settings: Settings) -> Path:
    return privacy_dir(settings) / "erasure_confirmations.parquet"


def confirmed_hashes(settings: Settings) -> list[str]:
    """Email hashes an operator confirmed, sorted (the dbt var; checked to be sha256 hex,
    since the model writes them into its SQL)."""
    path = confirmations_path(settings)
    if not path.exists():
        return []
    with duckdb.connect() as con:
        encryption.configure(con, settings)
        hashes = [r[0] for r in con.execute(
            f"SELECT DISTINCT email_sha256 FROM {read_parquet_sql(settings, path)} ORDER BY 1"
        ).fetchall()]
    bad = [h for h in hashes if not _SHA256.fullmatch(h or "")]
    if bad:
        raise ErasureReviewError(f"{path} holds {len(bad)} values that are not sha256 hashes")
    return hashes


def held_sql(catalog: str) -> str:
    """SELECT of the email hashes of held requests in the warehouse attached as `catalog`."""
    return (f'SELECT email_sha256 FROM "{catalog}".main.{MODEL} '
            f"WHERE status = '{HELD}'")


def drop_held(con: duckdb.DuckDBPyConnection, catalog: str, relation: str) -> int:
    """Delete from `relation` the `key_sha256` rows of requests held for review in the
    warehouse attached as `catalog` (nothing when it has no such model); returns how many."""
    if not has_model(con, catalog):
        return 0
    return con.execute(f"DELETE FROM {relation} WHERE key_sha256 IN ({held_sql(catalog)})"
                       ).fetchone()[0]


def has_model(con: duckdb.DuckDBPyConnection, catalog: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = ? "
        "AND table_schema = 'main' AND table_name = ?", [catalog, MODEL]).fetchone()[0])


def held_requests(settings: Settings) -> list[dict]:
    """The held requests of the last build: email (while the request is in the lake),
    hash, requested_at, first delivered, number of persons carrying the address."""
    if not settings.warehouse_path.exists():
        return []
    con = encryption.connect_warehouse(settings, read_only=True)
    try:
        catalog = con.execute("SELECT current_database()").fetchone()[0]
        if not has_model(con, catalog):
            return []
        con.execute(f"CREATE TEMP TABLE held AS SELECT email_sha256, requested_at, "
                    f"delivered_on, persons FROM main.{MODEL} WHERE status = '{HELD}'")
        emails = "NULL"
        if lake.partition_files(settings, "crm/erasure_requests"):
            encryption.configure(con, settings)
            source = read_parquet_sql(settings, lake.partition_file(settings, "crm/erasure_requests"),
                                      ", union_by_name = true")
            con.execute(f"""CREATE TEMP TABLE request_emails AS
                SELECT {email_sha256_sql('email')} AS email_sha256, min(lower(trim(email))) AS email
                FROM {source} WHERE nullif(trim(email), '') IS NOT NULL GROUP BY 1""")
            emails = "(SELECT r.email FROM request_emails r WHERE r.email_sha256 = h.email_sha256)"
        cur = con.execute(f"SELECT {emails} AS email, email_sha256, requested_at, delivered_on, "
                          "persons FROM held h ORDER BY delivered_on, email_sha256")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def confirm(email: str, settings: Settings, today: date | None = None) -> dict:
    """Confirm the held request for `email`: from the next night on it erases every person
    whose records carry the address. Returns the confirmed request."""
    key = email_sha256(email)
    held = {r["email_sha256"]: r for r in held_requests(settings)}
    if key not in held:
        listed = ", ".join(r["email"] or r["email_sha256"][:12] for r in held.values()) or "none"
        raise ErasureReviewError(f"no erasure request held for review has the address {email!r} "
                                 f"(held: {listed})")
    path = confirmations_path(settings)
    with duckdb.connect() as con:
        encryption.configure(con, settings)
        con.execute("CREATE TEMP TABLE confirmations (email_sha256 VARCHAR, confirmed_on DATE)")
        if path.exists():
            con.execute(f"INSERT INTO confirmations SELECT email_sha256, confirmed_on "
                        f"FROM {read_parquet_sql(settings, path)}")
        con.execute(f"INSERT INTO confirmations SELECT ?, DATE {literal((today or date.today()).isoformat())} "
                    "WHERE ? NOT IN (SELECT email_sha256 FROM confirmations)", [key, key])
        write_parquet_atomic(con, settings, "SELECT * FROM confirmations ORDER BY 1", path)
    log_event(logger, "erasure_request_confirmed", email_sha256_prefix=key[:12],
              persons=held[key]["persons"])
    return held[key]

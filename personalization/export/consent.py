"""The one consent and privacy filter every export goes through.

Whatever a segment's SQL selects, a contact leaves only through `export_eligible_contacts`:
opted in, not unsubscribed, not erased, contactable, a syntactically valid email, no
erasure request for that email, not on the suppression list (bounces, complaints), and
the first person holding that email. Everything else gets an `exclusion_reason`.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import duckdb

from personalization import lake
from personalization.config import Settings
from personalization.exceptions import ExportError
from personalization.privacy.emails import email_sha256_sql, valid_email_sql
from personalization.sql import literal

logger = logging.getLogger(__name__)

# Checked in this order; a contact is counted under the first reason that applies.
EXCLUSION_REASONS = (
    "no_profile",
    "erased",
    "not_opted_in",
    "unsubscribed",
    "invalid_email",
    "erasure_request",
    "suppressed",
    "not_contactable",
    "duplicate_email",
)


def normalised_email_sql(column: str) -> str:
    """How an email is compared and hashed everywhere: trimmed, lower case."""
    return f"lower(trim({column}))"


def suppressions_path(settings: Settings) -> Path:
    """`<home>/suppressions.csv`: `email_sha256, reason, suppressed_at` (hashes only)."""
    return settings.home / "suppressions.csv"


def register_suppressions(con: duckdb.DuckDBPyConnection, settings: Settings) -> int:
    """Temp table `export_suppressions(email_sha256, reason)`; accepts a plain `email` column.

    Holds `<home>/suppressions.csv` and, when the warehouse is attached, what the ESPs
    reported (`stg_esp__suppressions`: unsubscribes, bounces, complaints; reason
    `esp_<reason>`). Every suppression applies regardless of `suppressed_at`: a hard bounce
    or a complaint is never sent to again, backfills included. Returns the number of
    distinct hashes.
    """
    path = suppressions_path(settings)
    con.execute("CREATE OR REPLACE TABLE export_suppressions (email_sha256 VARCHAR, reason VARCHAR)")
    if path.exists():
        _insert_suppressions_file(con, path)
    _insert_esp_suppressions(con)
    return con.execute("SELECT count(*) FROM export_suppressions").fetchone()[0]


def _insert_suppressions_file(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    try:
        cols = [c[0] for c in con.execute(
            f"DESCRIBE SELECT * FROM read_csv({literal(path)}, header=true, all_varchar=true)"
        ).fetchall()]
        if "email_sha256" in cols:
            key = "lower(trim(email_sha256))"
        elif "email" in cols:
            # Plain emails are hashed on read and never copied anywhere.
            logger.warning("suppressions file %s holds plain emails; store email_sha256 instead", path)
            key = email_sha256_sql("email")
        else:
            raise ExportError(f"suppressions file {path} needs an email_sha256 (or email) column")
        reason = "reason" if "reason" in cols else "NULL"
        con.execute(f"""
            INSERT INTO export_suppressions
            SELECT {key}, any_value({reason})
            FROM read_csv({literal(path)}, header=true, all_varchar=true)
            WHERE nullif(trim({key}), '') IS NOT NULL
            GROUP BY 1
        """)
    except duckdb.Error as e:
        raise ExportError(f"cannot read suppressions file {path}: {e}") from e


def _insert_esp_suppressions(con: duckdb.DuckDBPyConnection) -> None:
    """Add the ESPs' suppressions from the warehouse's `stg_esp__suppressions`, wherever the
    warehouse is attached (none attached, or not built yet: nothing to add)."""
    found = con.execute("""
        SELECT database_name, schema_name FROM duckdb_views()
        WHERE view_name = 'stg_esp__suppressions'
        UNION ALL
        SELECT database_name, schema_name FROM duckdb_tables()
        WHERE table_name = 'stg_esp__suppressions'
    """).fetchall()
    if not found:
        return
    relation = f'"{found[0][0]}"."{found[0][1]}".stg_esp__suppressions'
    try:
        con.execute(f"""
            INSERT INTO export_suppressions
            SELECT email_sha256, 'esp_' || reason FROM {relation}
            WHERE email_sha256 NOT IN (SELECT email_sha256 FROM export_suppressions)
        """)
    except duckdb.Error as e:  # fail closed: no export without the ESPs' feedback
        raise ExportError(f"cannot read the ESP suppressions {relation}: {e}") from e


def erasure_glob(settings: Settings) -> str:
    return str(lake.partition_file(settings, "crm/erasure_requests"))


def register_erasures(con: duckdb.DuckDBPyConnection, ds: date, settings: Settings) -> int:
    """Temp table `export_erasures(email, email_sha256, requested_at, first_seen_ds)`.

    Every erasure up to `ds`: requests in the lake (partitions `ds <= ds`; the requester's
    plain email, needed by the ESP sync to delete the contact) and the hashed erasure ledger
    (`personalization.privacy`), which alone remembers a request once every ESP confirmed
    it. One row per hash, earliest request kept. Returns its rows.
    """
    from personalization.privacy.ledger import ledger_path, read_parquet_sql

    con.execute(
        "CREATE OR REPLACE TABLE export_erasures (email VARCHAR, email_sha256 VARCHAR, "
        "requested_at TIMESTAMP, first_seen_ds DATE)"
    )
    email = normalised_email_sql("email")
    try:
        if lake.partition_files(settings, "crm/erasure_requests"):
            source = read_parquet_sql(settings, erasure_glob(settings), ", hive_partitioning=true")
            con.execute(f"""
                INSERT INTO export_erasures
                SELECT {email}, sha256({email}), min(CAST(requested_at AS TIMESTAMP)), min(CAST(ds AS DATE))
                FROM {source}
                WHERE CAST(ds AS DATE) <= DATE {literal(ds.isoformat())}
                  AND nullif({email}, '') IS NOT NULL
                GROUP BY {email}
            """)
        if ledger_path(settings).exists():
            con.execute(f"""
                INSERT INTO export_erasures
                SELECT NULL, key_sha256, NULL, min(erased_on)
                FROM {read_parquet_sql(settings, ledger_path(settings))}
                WHERE key_kind = 'email' AND erased_on <= DATE {literal(ds.isoformat())}
                  AND key_sha256 NOT IN (SELECT email_sha256 FROM export_erasures)
                GROUP BY key_sha256
            """)
    except duckdb.Error as e:
        raise ExportError(f"cannot read erasure requests {erasure_glob(settings)}: {e}") from e
    return con.execute("SELECT count(*) FROM export_erasures").fetchone()[0]


def register_consent_filter(con: duckdb.DuckDBPyConnection, source: str = "wh.main") -> None:
    """Create `export_contact_consent` (every profile with its `exclusion_reason`) and the
    view `export_eligible_contacts` (reason null) that every segment export joins.

    Needs `export_suppressions` and `export_erasures`. Unknown (null) consent flags count as
    no consent: the filter fails closed. Materialised once per run: the regex and hashes are
    the costly part and every segment reuses them.
    """
    email = normalised_email_sql("p.email")
    con.execute(f"""
    CREATE OR REPLACE TABLE export_contact_consent AS
    WITH profiles AS (SELECT * FROM {source}.customer_profiles),
    checked AS (
        SELECT
            p.unified_id,
            {email} AS email,
            CASE
                WHEN p.is_erased IS DISTINCT FROM false THEN 'erased'
                WHEN p.is_opted_in IS DISTINCT FROM true THEN 'not_opted_in'
                WHEN p.is_unsubscribed IS DISTINCT FROM false THEN 'unsubscribed'
                WHEN NOT {valid_email_sql(email)} THEN 'invalid_email'
                WHEN sha256({email}) IN (SELECT email_sha256 FROM export_erasures) THEN 'erasure_request'
                WHEN sha256({email}) IN (SELECT email_sha256 FROM export_suppressions) THEN 'suppressed'
                WHEN p.is_contactable IS DISTINCT FROM true THEN 'not_contactable'
            END AS reason
        FROM profiles AS p
    ),
    final AS (
        SELECT
            unified_id,
            email,
            CASE
                WHEN reason IS NOT NULL THEN reason
                -- One ESP contact per email: the lowest unified_id holding it wins.
                WHEN row_number() OVER (PARTITION BY email, reason IS NULL ORDER BY unified_id) > 1
                    THEN 'duplicate_email'
            END AS exclusion_reason
        FROM checked
    )
    SELECT * FROM final
    """)
    con.execute("""
    CREATE OR REPLACE VIEW export_eligible_contacts AS
    SELECT unified_id, email FROM export_contact_consent WHERE exclusion_reason IS NULL
    """)


def exclusion_counts(con: duckdb.DuckDBPyConnection, members_table: str) -> dict[str, int]:
    """Per reason, how many members of `members_table` (distinct unified_id) are excluded."""
    rows = con.execute(f"""
        SELECT coalesce(c.exclusion_reason, 'no_profile') AS reason, count(*) AS n
        FROM (SELECT DISTINCT unified_id FROM {members_table}) AS m
        LEFT JOIN export_contact_consent AS c ON c.unified_id = m.unified_id
        WHERE c.unified_id IS NULL OR c.exclusion_reason IS NOT NULL
        GROUP BY 1
    """).fetchall()
    found = dict(rows)
    return {r: int(found.get(r, 0)) for r in EXCLUSION_REASONS}

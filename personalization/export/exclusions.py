"""Who was left out of each segment's export, and why: for the portal's contact lookup.

A marketer asking "why did Jane not get the cart email?" needs the reason the export
dropped her (no consent, unsubscribed, suppressed at the ESP, erased, invalid email...).
Those people must not appear in the export folder (nothing leaves for them), so the record
lives beside it, at `<home>/export_audit/<ds>/exclusions.parquet`, and holds no email: only
the sha256 of the normalised email (the lookup hashes what the marketer typed), the
unified_id, the segment and the reason. Rewritten with every publish of that date.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from personalization.config import Settings
from personalization.export import files

AUDIT_DIR = "export_audit"
FILE = "exclusions.parquet"
TABLE = "export_exclusions"


def audit_path(settings: Settings, ds: str) -> Path:
    """`<home>/export_audit/<ds>/exclusions.parquet`."""
    return settings.home / AUDIT_DIR / ds / FILE


def tmp_path(settings: Settings, ds: str) -> Path:
    """Where a publish writes the file before the export is in place (hidden: in progress)."""
    return settings.home / AUDIT_DIR / f".tmp-{ds}-{os.getpid()}.parquet"


def start(con: duckdb.DuckDBPyConnection) -> None:
    """An empty table the segments' exclusions are collected in (by every export worker)."""
    con.execute(f"CREATE OR REPLACE TABLE {TABLE} (segment VARCHAR, unified_id VARCHAR,"
                " email_sha256 VARCHAR, reason VARCHAR, detail VARCHAR)")


def record(con: duckdb.DuckDBPyConnection, segment: str, members_table: str) -> None:
    """Add the members of `members_table` the consent filter excluded, with the reason.

    `detail` is the suppression list's own reason (unsubscribe, bounce, complaint) for
    people suppressed at the ESP.
    """
    con.execute(f"""
        INSERT INTO {TABLE}
        SELECT ?, m.unified_id, sha256(c.email), coalesce(c.exclusion_reason, 'no_profile'),
               s.reason
        FROM (SELECT DISTINCT unified_id FROM {members_table}) AS m
        LEFT JOIN export_contact_consent AS c ON c.unified_id = m.unified_id
        LEFT JOIN export_suppressions AS s
               ON c.exclusion_reason = 'suppressed' AND s.email_sha256 = sha256(c.email)
        WHERE c.unified_id IS NULL OR c.exclusion_reason IS NOT NULL
    """, [segment])


def write(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Write the collected exclusions to `path` (sorted: the same inputs give the same file)."""
    files.write_parquet(con, f"SELECT * FROM {TABLE} ORDER BY segment, unified_id", path)


def put_in_place(tmp: Path, settings: Settings, ds: str) -> None:
    """Move a written audit file to its place for `ds` (atomic rename)."""
    final = audit_path(settings, ds)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)

"""After the ESP sync: forget the plain email of every erasure request all ESPs confirmed.

An erasure request is the one record that must keep the requester's address in clear for a
while: the sync deletes the contact at each ESP by email (`erasures.csv` of the export).
Once every configured ESP target has recorded the deletion (the sync log's `esp_erasures`,
keyed by hash), the request rows leave the lake partitions and the landing copy, and the
`email` cells of past exports' and drops' `erasures.csv` are emptied (the hash stays).
From then on only the ledger's hash remembers the person.
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import date
from pathlib import Path

import duckdb

from personalization import lake
from personalization.config import Settings
from personalization.observability import StepReport, timed
from personalization.privacy import redact, reviews
from personalization.privacy.emails import email_sha256_sql
from personalization.privacy.erasure import _connect, _dated_folders, _finish, attached_warehouse
from personalization.privacy.ledger import read_parquet_sql, relation_columns
from personalization.sql import literal

logger = logging.getLogger(__name__)


def _confirmed(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Temp table `confirmed(key_sha256, key_kind)`: request hashes every ESP target deleted."""
    con.execute("CREATE OR REPLACE TEMP TABLE confirmed (key_sha256 VARCHAR, key_kind VARCHAR)")
    if not lake.partition_files(settings, "crm/erasure_requests"):
        return
    con.execute(f"""CREATE OR REPLACE TEMP TABLE request_hashes AS
        SELECT DISTINCT {email_sha256_sql('email')} AS key_sha256
        FROM {read_parquet_sql(settings, lake.partition_file(settings, 'crm/erasure_requests'), ', union_by_name = true')}
        WHERE nullif(trim(email), '') IS NOT NULL""")
    # A request held for review keeps its address in the lake: it is what suppresses the
    # address until an operator confirms it (the ledger learns it only then).
    with attached_warehouse(con, settings) as wh:
        if wh is not None:
            reviews.drop_held(con, wh, "request_hashes")
    targets = list(settings.esp_targets)
    if not targets:  # nothing to delete at: the plain address is not needed at all
        con.execute("INSERT INTO confirmed SELECT key_sha256, 'email' FROM request_hashes")
        return
    log = settings.home / "esp_sync.duckdb"
    if not log.exists():
        return
    con.execute(f"ATTACH {literal(log)} AS sync_log (READ_ONLY)")
    try:
        has_table = con.execute("SELECT count(*) FROM information_schema.tables WHERE "
                                "table_catalog = 'sync_log' AND table_name = 'esp_erasures'"
                                ).fetchone()[0]
        if has_table:
            con.execute("""
                INSERT INTO confirmed
                SELECT r.key_sha256, 'email' FROM request_hashes r
                WHERE (SELECT count(DISTINCT e.esp) FROM sync_log.main.esp_erasures e
                       WHERE e.email_sha256 = r.key_sha256
                         AND e.esp IN (SELECT unnest(?::VARCHAR[]))) = ?""",
                        [targets, len(targets)])
    finally:
        con.execute("DETACH sync_log")


def _blank_emails(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Empty the `email` cells of confirmed rows of an `erasures.csv` (add `email_sha256`
    when the file has none), keeping row order; returns the rows changed."""
    source = f"read_csv({literal(path)}, header = true, all_varchar = true)"
    columns = relation_columns(con, source)
    if "email" not in columns:
        return 0
    hashed = "email_sha256" if "email_sha256" in columns else email_sha256_sql("email")
    changed = con.execute(f"""SELECT count(*) FROM {source} WHERE nullif(trim(email), '') IS NOT NULL
        AND {hashed} IN (SELECT key_sha256 FROM confirmed)""").fetchone()[0]
    if not changed:
        return 0
    select = ", ".join(
        f"CASE WHEN {hashed} IN (SELECT key_sha256 FROM confirmed) THEN NULL ELSE email END AS email"
        if c == "email" else f'"{c}"' for c in columns)
    if "email_sha256" not in columns:
        select += f", CASE WHEN nullif(trim(email), '') IS NOT NULL THEN {hashed} END AS email_sha256"
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        con.execute(f"COPY (SELECT {select} FROM {source}) TO {literal(tmp)} "
                    "(FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"')")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return changed


def purge_erasure_requests(ds: date, settings: Settings) -> StepReport:
    """Drop confirmed requesters' plain emails from the lake, landing, exports and drops."""
    with timed() as t:
        con = _connect(settings)
        try:
            _confirmed(con, settings)
            confirmed = con.execute("SELECT count(*) FROM confirmed").fetchone()[0]
            areas: dict[str, list[dict]] = {"lake": [], "landing": [], "exports": [],
                                            "esp_drop": []}
            if confirmed:
                areas["lake"] = redact.lake_tables(con, settings, "confirmed",
                                                   tables=("crm/erasure_requests",))
                if settings.landing_owned:
                    areas["landing"] = redact.landing_files(
                        con, settings, "confirmed", redact.landing_for(settings, areas["lake"]))
                for area, root in (("exports", settings.exports_dir),
                                   ("esp_drop", settings.home / "esp_drop")):
                    for folder in _dated_folders(root):
                        path = folder / "erasures.csv"
                        if path.exists() and (n := _blank_emails(con, path)):
                            redact.update_manifest(folder, [{"file": "erasures.csv",
                                                             "rows_removed": 0}], ds.isoformat(),
                                                   note="erasure request emails removed")
                            areas[area].append({"path": str(path.relative_to(settings.home)),
                                                "rows_removed": n})
        finally:
            con.close()
    return _finish(ds, settings, "purge_erasure_requests", areas, t["seconds"],
                   {"requests_confirmed": confirmed})


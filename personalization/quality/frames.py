"""The frames the gate validates, computed in DuckDB so only what is checked reaches pandas.

Wide tables are never loaded whole: each frame holds the few columns a suite reads, plus
flags that SQL derives from joins (is this member in profiles? is this email erased?)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from personalization import lake
from personalization.config import Settings
from personalization.privacy.emails import email_sha256_sql

# Timestamp column whose maximum must not pass the end of ds, per lake table.
LAKE_TIMESTAMPS = {
    "crm/contacts": "updated_at",
    "crm/erasure_requests": "requested_at",
    "shop/customers": "updated_at",
    "shop/products": None,
    "shop/orders": "ordered_at",
    "shop/order_items": None,
    "pixel/events": "occurred_at",
}


def _lake_options(settings: Settings) -> str:
    from personalization.privacy.encryption import parquet_read_options

    return parquet_read_options(settings)


def ds_end(ds: date) -> datetime:
    return datetime.combine(ds + timedelta(days=1), time())


def lake_partition(settings: Settings, table: str, ds: date) -> Path:
    return lake.partition_file(settings, table, ds)


def lake_frame(con: duckdb.DuckDBPyConnection, settings: Settings, table: str,
               ds: date) -> pd.DataFrame | None:
    """Key, email and lateness columns of one lake partition (None if it was not loaded)."""
    from expectations.lake import EMAIL_COLUMNS, KEYS

    path = lake_partition(settings, table, ds)
    if not path.exists():
        return None
    from personalization.privacy.emails import valid_email_sql

    cols = list(KEYS[table])
    if table in EMAIL_COLUMNS:
        # The product's one email rule (null = not given: the key checks judge that).
        email = EMAIL_COLUMNS[table]
        cols = [c for c in cols if c != email] + [
            f"{email}", f"{email} IS NULL OR {valid_email_sql(email)} AS is_valid_email"]
    ts = LAKE_TIMESTAMPS[table]
    lateness = (f"epoch({ts}) - epoch(TIMESTAMP '{ds_end(ds)}')" if ts else "0")
    select = ", ".join(cols + [f"coalesce({lateness}, 0) AS seconds_after_ds_end"])
    return con.execute(f"SELECT {select} FROM read_parquet(?{_lake_options(settings)})",
                       [str(path)]).df()


def load_log(con: duckdb.DuckDBPyConnection, settings: Settings, table: str, ds: date) -> dict | None:
    path = lake.partition_file(settings, table, ds, area="load_log")
    if not path.exists():
        return None
    row = con.execute("SELECT sum(rows_loaded), sum(rows_in), sum(rows_quarantined) "
                      f"FROM read_parquet(?{_lake_options(settings)})", [str(path)]).fetchone()
    return {"rows_loaded": int(row[0] or 0), "rows_in": int(row[1] or 0),
            "rows_quarantined": int(row[2] or 0)}


def erasure_hashes_sql(settings: Settings) -> str:
    """SQL relation of the sha256 of every erased email, read by the gate itself (not through
    the export's code): requests in the lake (any ds) and the hashed erasure ledger."""
    from personalization.privacy.encryption import parquet_read_options
    from personalization.privacy.ledger import ledger_path

    parts = []
    glob = lake.partition_file(settings, "crm/erasure_requests")
    if lake.partition_files(settings, "crm/erasure_requests"):
        parts.append(f"SELECT {email_sha256_sql('email')} AS email_sha256 FROM read_parquet("
                     f"'{glob}', hive_partitioning = false{parquet_read_options(settings)}) "
                     "WHERE email IS NOT NULL")
    ledger = ledger_path(settings)
    if ledger.exists():
        parts.append(f"SELECT key_sha256 FROM read_parquet('{ledger}'{parquet_read_options(settings)}) "
                     "WHERE key_kind = 'email'")
    if not parts:
        return "(SELECT NULL::VARCHAR AS email_sha256 WHERE false)"
    return "(SELECT DISTINCT email_sha256 FROM (" + " UNION ALL ".join(parts) + "))"


def suppression_hashes_sql(con: duckdb.DuckDBPyConnection, settings: Settings) -> str:
    """SQL relation of suppressed email hashes, read by the gate itself from
    `<home>/suppressions.csv` (`email_sha256`, or plain `email` hashed here)."""
    path = settings.home / "suppressions.csv"
    if not path.exists():
        return "(SELECT NULL::VARCHAR AS email_sha256 WHERE false)"
    source = f"read_csv('{path}', header = true, all_varchar = true)"
    columns = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    if "email_sha256" in columns:
        key = "lower(trim(email_sha256))"
    elif "email" in columns:
        key = email_sha256_sql("email")
    else:  # unreadable as a suppression list: suppress nothing would fail open
        raise ValueError(f"{path} has neither email_sha256 nor email: cannot check suppressions")
    return f"(SELECT DISTINCT {key} AS email_sha256 FROM {source})"


def identity_map_frame(con, suite) -> tuple[pd.DataFrame, int]:
    return judged_frame(con, "SELECT source, source_id, unified_id, match_score FROM identity_map",
                        suite)


def profiles_frame(con, settings: Settings, suite) -> tuple[pd.DataFrame, int]:
    from personalization.privacy.emails import valid_email_sql

    erased = erasure_hashes_sql(settings)
    return judged_frame(con, f"""
        SELECT
            p.unified_id, p.lifecycle_stage, coalesce(p.revenue, 0) AS revenue,
            coalesce(p.is_contactable AND NOT {valid_email_sql('p.email')}, false)
                AS contactable_without_valid_email,
            coalesce(p.is_erased AND (p.email IS NOT NULL OR p.first_name IS NOT NULL
                     OR p.last_name IS NOT NULL OR p.phone IS NOT NULL OR p.street IS NOT NULL),
                     false) AS erased_but_has_personal_data,
            (p.email IS NOT NULL AND {email_sha256_sql('p.email')} IN (SELECT email_sha256 FROM {erased}))
                AS email_matches_erasure_request,
            coalesce(p.is_contactable AND (NOT coalesce(p.is_opted_in, false)
                     OR coalesce(p.is_unsubscribed, false) OR coalesce(p.is_erased, false)),
                     false) AS contactable_without_consent
        FROM customer_profiles p
    """, suite)


def rfm_frame(con, suite) -> tuple[pd.DataFrame, int]:
    return judged_frame(con, """
        SELECT unified_id, recency_days, frequency, monetary, recency_score, frequency_score,
               monetary_score, rfm_segment
        FROM customer_rfm
    """, suite)


def reconciliation_frame(con) -> pd.DataFrame:
    # Decimal sums (as dbt's exact_sum): a double sum over 10M orders (3M people) was 0.016
    # off the exact total, enough to fail the cent tolerance on data that reconciles.
    return con.execute("""
        SELECT
            round((SELECT coalesce(sum(revenue::DECIMAL(38, 9)), 0) FROM customer_profiles)
                - (SELECT coalesce(sum(total_amount::DECIMAL(38, 9)), 0) FROM orders
                   WHERE status = 'placed'), 2)::DOUBLE
                AS revenue_difference,
            (SELECT count(DISTINCT unified_id)::DOUBLE / greatest(count(*), 1)
               FROM identity_map WHERE source IN ('crm', 'shop'))
                AS profiles_per_known_record,
            (SELECT count(*) FROM orders WHERE unified_id IS NULL) AS orders_without_person
    """).df()


def scores_frame(con, suite) -> tuple[pd.DataFrame, int]:
    return judged_frame(con, """
        SELECT s.unified_id, s.p_vip, s.p_churn, s.best_send_hour,
               s.unified_id IN (SELECT unified_id FROM customer_profiles) AS in_profiles
        FROM customer_scores s
    """, suite)


def segment_frame(con, segment: str) -> pd.DataFrame:
    return con.execute(f"""
        SELECT s.unified_id, s.unified_id IN (SELECT unified_id FROM customer_profiles) AS in_profiles
        FROM "{segment}" s
    """).df()


def judged_frame(con, sql: str, suite, params: dict | None = None) -> tuple[pd.DataFrame, int]:
    """(frame, rows of `sql`): the rows of `sql` an expectation of `suite` could reject, or
    every row when the suite needs them all (`gx_runner.suspects_sql`). The flags are still
    computed for every row, in SQL; only suspects reach pandas and GX (on a clean night:
    none), with the same verdict and failing rows."""
    from personalization.quality.gx_runner import suspects_sql

    table = f"__judged_{uuid.uuid4().hex}"
    suspects = suspects_sql(suite, table)
    if suspects is None:
        frame = con.execute(sql, params).df()
        return frame, len(frame)
    # Computed once into a temp table, then counted and filtered: `sql` run twice (its
    # joins and email hashes) was half of the 1M export gate's time.
    con.execute(f"CREATE TEMP TABLE {table} AS {sql}", params)
    try:
        rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        return con.execute(suspects).df(), rows
    finally:
        con.execute(f"DROP TABLE {table}")


def export_frames(con, settings: Settings, files: list[Path],
                  suites: list) -> list[tuple[pd.DataFrame, int]]:
    """Each exported segment file joined back to the warehouse's consent flags, with the
    gate's own reading of erasures and suppressions (independent of the export's filter), as
    `judged_frame` for its suite. The flags of every file's rows are computed in one pass
    (one join with the profiles, each email hashed once): per file, the twelve joins and
    hashes were most of the 1M export gate's 5.4 s."""
    from personalization.privacy.emails import valid_email_sql

    erased = erasure_hashes_sql(settings)
    suppressed = suppression_hashes_sql(con, settings)
    table = f"__export_{uuid.uuid4().hex}"
    con.execute(f"""
        CREATE TEMP TABLE {table} AS
        SELECT e.__gate_file AS file, e.email, e.unified_id,
               {valid_email_sql('e.email')} AS is_valid_email,
               coalesce(p.is_contactable AND p.is_opted_in AND NOT p.is_unsubscribed, false)
                   AS is_contactable,
               e.email_sha256 IN (SELECT email_sha256 FROM {erased})
                   OR coalesce(p.is_erased, true) AS is_erased,
               e.email_sha256 IN (SELECT email_sha256 FROM {suppressed}) AS is_suppressed
        FROM (SELECT __gate_file, email, unified_id, {email_sha256_sql('email')} AS email_sha256
              -- the file's name in a column no segment names
              FROM read_parquet($files, filename = '__gate_file', union_by_name = true)) e
        LEFT JOIN customer_profiles p USING (unified_id)
    """, {"files": [str(f) for f in files]})
    try:
        return [judged_frame(con, f"SELECT * EXCLUDE (file) FROM {table} WHERE file = $file",
                             suite, {"file": str(f)})
                for f, suite in zip(files, suites, strict=True)]
    finally:
        con.execute(f"DROP TABLE {table}")

"""The nightly erasure steps (GDPR Art. 17). See docs/privacy.md.

- `erase_arrivals` (after `gate_lake`): tonight's lake partitions, quarantine and landing
  files are matched against the whole ledger, so data re-delivered for a person erased
  earlier is gone before the warehouse is built.
- `erase` (after `export`, before `sync`): persons erased tonight are found the way the
  warehouse found them (an erasure request's email on any of their records, then every
  record identity resolution joined to them); their keys go into the hashed ledger, then
  every copy is cleaned: lake partitions, quarantine, the landing copy (if the project owns
  it), past exports and ESP drop folders (manifests updated), scores, every warehouse
  table and the Spark engine's tables; the warehouse file is copied (deleted values gone
  from its free blocks) within `erasure_compaction_days` (redact.compact_if_due). Deletion
  at each ESP stays the sync's job (it reads tonight's `erasures.csv`); the requester's
  plain email leaves the lake once every ESP confirmed (`purge`).

Each step writes `<home>/privacy/reports/<ds>/<step>.json`: what was erased where.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb

from personalization import lake
from personalization.config import Settings
from personalization.observability import StepReport, log_event, timed
from personalization.privacy import encryption, ledger, redact, reviews
from personalization.privacy.emails import email_sha256_sql
from personalization.privacy.ledger import read_parquet_sql
from personalization.privacy.matching import erased_condition
from personalization.sql import literal

logger = logging.getLogger(__name__)


def _connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config=settings.duckdb_config("privacy"))
    encryption.configure(con, settings)
    return con


def _lake_glob(settings: Settings, table: str, ds: str | None = None) -> str | None:
    if not lake.partition_files(settings, table, ds):
        return None
    return read_parquet_sql(settings, lake.partition_file(settings, table, ds),
                            ", union_by_name = true, hive_partitioning = true")


def write_report(settings: Settings, ds: date, step: str, report: dict) -> Path:
    path = ledger.privacy_dir(settings) / "reports" / ds.isoformat() / f"{step}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path


def _summary(areas: dict[str, list[dict]]) -> dict:
    return {area: {"files": len(entries), "rows_removed": sum(e["rows_removed"] for e in entries),
                   "changed": entries} for area, entries in areas.items()}


def _derive_order_keys(con: duckdb.DuckDBPyConnection, settings: Settings, keys: str,
                       ds: str | None = None) -> None:
    """Orders that belong to an erased person (by account or email) erase their lines too."""
    orders = _lake_glob(settings, "shop/orders", ds)
    if orders is None:
        return
    condition = erased_condition(["customer_id", "email"], ledger=keys, source=orders)
    con.execute(f"""INSERT INTO {keys} (key_sha256, key_kind)
                    SELECT DISTINCT sha256('order:' || order_id), 'order' FROM {orders}
                    WHERE {condition}""")


def _arrival_keys(con: duckdb.DuckDBPyConnection, settings: Settings, ds: date) -> None:
    con.execute(f"CREATE OR REPLACE TEMP TABLE arrival_keys AS "
                f"SELECT key_sha256, key_kind FROM {ledger.TABLE}")
    _derive_order_keys(con, settings, "arrival_keys", ds.isoformat())
    ledger.add_keys(con, settings, "arrival_keys", ds)


def erase_arrivals(ds: date, settings: Settings) -> StepReport:
    """Remove rows of already erased persons from what arrived for `ds` (lake partitions,
    quarantine, landing files)."""
    with timed() as t:
        con = _connect(settings)
        try:
            known = ledger.register_ledger(con, settings)
            areas: dict[str, list[dict]] = {"lake": [], "quarantine": [], "landing": []}
            if known:
                _arrival_keys(con, settings, ds)
                areas.update(_apply_to_partitions(con, settings, "arrival_keys", ds.isoformat()))
        finally:
            con.close()
    return _finish(ds, settings, "erase_arrivals", areas, t["seconds"],
                   {"ledger_keys": known})


@contextmanager
def attached_warehouse(con: duckdb.DuckDBPyConnection, settings: Settings) -> Iterator[str | None]:
    """The warehouse attached read-only to `con`: its catalog name, None when there is none."""
    if not settings.warehouse_path.exists():
        yield None
        return
    wh = encryption.warehouse_alias(settings)
    con.execute(f'ATTACH {literal(settings.warehouse_path)} AS "{wh}"'
                f"{encryption.attach_options(settings, read_only=True)}")
    try:
        yield wh
    finally:
        con.execute(f'DETACH "{wh}"')


def _resolve_new_persons(con: duckdb.DuckDBPyConnection, settings: Settings,
                         ds: date) -> tuple[int, int]:
    """Temp table `new_keys(key_sha256, key_kind)` for persons to erase tonight; returns the
    number of persons found in the warehouse and of requests held for review."""
    con.execute("CREATE OR REPLACE TEMP TABLE new_keys (key_sha256 VARCHAR, key_kind VARCHAR)")
    requests = _lake_glob(settings, "crm/erasure_requests")
    if requests is not None:
        con.execute(f"""INSERT INTO new_keys
            SELECT DISTINCT {email_sha256_sql('email')}, 'email' FROM {requests}
            WHERE CAST(ds AS DATE) <= DATE {literal(ds.isoformat())}
              AND nullif(trim(email), '') IS NOT NULL""")
    with attached_warehouse(con, settings) as wh:
        if wh is None:
            return 0, 0
        # Only the requests' emails are in new_keys yet.
        held = reviews.drop_held(con, wh, "new_keys")
        tables = {r[0] for r in con.execute(
            f"SELECT table_name FROM information_schema.tables WHERE table_catalog = '{wh}'"
        ).fetchall()}
        if not {"customer_profiles", "identity_map"} <= tables:
            return 0, held
        emails = ("(SELECT key_sha256 FROM new_keys WHERE key_kind = 'email' UNION "
                  f"SELECT key_sha256 FROM {ledger.TABLE} WHERE key_kind = 'email')")
        records = f"(SELECT key_sha256 FROM {ledger.TABLE} WHERE key_kind = 'record')"
        # The warehouse decided who is erased (is_erased: a request's email on any record of
        # the person, unless held for review); also anyone still holding a ledger email or record.
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE erased_persons AS
            SELECT unified_id FROM "{wh}".main.customer_profiles WHERE is_erased
            UNION SELECT unified_id FROM "{wh}".main.customer_profiles
                  WHERE email IS NOT NULL AND {email_sha256_sql('email')} IN {emails}
            UNION SELECT unified_id FROM "{wh}".main.identity_map
                  WHERE sha256(source || ':' || source_id) IN {records}
        """)
        persons = con.execute("SELECT count(*) FROM erased_persons").fetchone()[0]
        con.execute(f"""
            INSERT INTO new_keys
            SELECT sha256('unified:' || unified_id), 'unified' FROM erased_persons
            UNION SELECT sha256(source || ':' || source_id), 'record'
                  FROM "{wh}".main.identity_map WHERE unified_id IN (SELECT unified_id FROM erased_persons)
        """)
        if "orders" in tables:
            con.execute(f"""INSERT INTO new_keys
                SELECT sha256('order:' || order_id), 'order' FROM "{wh}".main.orders
                WHERE unified_id IN (SELECT unified_id FROM erased_persons)""")
    _add_record_emails(con, settings)
    _derive_order_keys(con, settings, "new_keys")
    return persons, held


def _add_record_emails(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """The emails on an erased person's own records become ledger keys, so a re-delivery
    under a new record id is caught too. An email that a record of someone not erased also
    uses (a shared or junk address) is left out: it would erase that person's data."""
    con.execute("CREATE OR REPLACE TEMP TABLE record_emails (key_sha256 VARCHAR, is_erased BOOLEAN)")
    for table, id_column, prefix in (("crm/contacts", "contact_id", "crm"),
                                     ("shop/customers", "customer_id", "shop")):
        rows = _lake_glob(settings, table)
        if rows is not None:
            con.execute(f"""
                INSERT INTO record_emails
                SELECT {email_sha256_sql('email')},
                       sha256('{prefix}:' || {id_column}) IN
                           (SELECT key_sha256 FROM new_keys WHERE key_kind = 'record')
                FROM {rows} WHERE nullif(trim(email), '') IS NOT NULL""")
    con.execute("""INSERT INTO new_keys
                   SELECT key_sha256, 'email' FROM record_emails
                   GROUP BY key_sha256 HAVING bool_and(is_erased)""")
    con.execute("DROP TABLE record_emails")


def erase(ds: date, settings: Settings) -> StepReport:
    """Record tonight's erasures in the ledger and remove those persons from every copy."""
    with timed() as t:
        con = _connect(settings)
        try:
            ledger.register_ledger(con, settings)
            persons, held = _resolve_new_persons(con, settings, ds)
            added = ledger.add_keys(con, settings, "new_keys", ds)
            con.execute(f"CREATE OR REPLACE TEMP TABLE pending_keys AS SELECT key_sha256, key_kind "
                        f"FROM {ledger.TABLE} WHERE applied_on IS NULL")
            pending = con.execute("SELECT count(*) FROM pending_keys").fetchone()[0]
            areas = _apply_everywhere(con, settings, "pending_keys", ds) if pending else {}
            ledger.mark_applied(con, settings, ds)
            kinds = dict(con.execute(f"SELECT key_kind, count(*) FROM {ledger.TABLE} "
                                     "GROUP BY 1").fetchall())
        finally:
            con.close()
        # Last, and on nights without requests too: the copy a week of erasures owes.
        compaction = redact.compact_if_due(settings, ds)
    return _finish(ds, settings, "erase", areas, t["seconds"],
                   {"persons_flagged_in_warehouse": persons, "requests_held_for_review": held,
                    "new_ledger_keys": added,
                    "keys_applied": pending, "ledger_keys_by_kind": kinds,
                    "warehouse_compaction": compaction})


def _apply_to_partitions(con: duckdb.DuckDBPyConnection, settings: Settings, keys: str,
                         ds: str | None = None) -> dict[str, list[dict]]:
    """The lake, its quarantine and (when owned) the landing copy without the rows that match
    `keys`: every partition, or only `ds`'s."""
    lake_files = redact.lake_hits(con, settings, keys, ds=ds, lines=True)
    redact.quarantine_hits(con, settings, keys, ds)
    # The landing copy before the lake: its lines are found by their lake and quarantine rows
    # (no tokenising of every line: that was most of a 1M night's `erase_arrivals`), so a run
    # interrupted before the lake is cleaned finds them again. Files never extracted are read
    # by tokens: on `erase`, every CRM and shop file; on arrival, the night's were just extracted.
    landing = (redact.landing_lines(con, settings, keys,
                                    redact.landing_person_files(settings) if ds is None else [])
               if settings.landing_owned else None)
    areas = {"lake": redact.parquet_files(con, settings, lake_files, keys, all_hit=True),
             "quarantine": redact.rewrite_quarantine(con, settings)}
    if landing is not None:
        areas["landing"] = landing
    return areas


def _apply_everywhere(con: duckdb.DuckDBPyConnection, settings: Settings, keys: str,
                      ds: date) -> dict[str, list[dict]]:
    # The warehouse first: on a night its copy is due, that copy is the one step that can run
    # out of disk, and it then stops before any other copy was rewritten (the requests stay
    # pending; the copy itself is made last, by `erase`).
    keys_file = ledger.privacy_dir(settings) / f".keys-{ds.isoformat()}.parquet"
    ledger.write_parquet_atomic(con, settings, f"SELECT * FROM {keys}", keys_file)
    try:
        warehouse = redact.warehouse(settings, keys_file, ds)
    finally:
        keys_file.unlink(missing_ok=True)
    areas = _apply_to_partitions(con, settings, keys)
    for area, root in (("exports", settings.exports_dir), ("esp_drop", settings.home / "esp_drop")):
        areas[area] = redact.published_folders(con, settings, _dated_folders(root), keys,
                                               ds.isoformat())
    # The intake's day files up to `ds` (today's is still being appended to: the trigger
    # runner applies the ledger to what it holds on every tick, and tomorrow's night this).
    intake = [f for day in _dated_folders(settings.intake_dir / "pixel") if day.name <= ds.isoformat()
              for f in (day / "events.jsonl", day / "quarantine.jsonl")]
    areas["intake"] = redact.landing_files(con, settings, keys, intake)
    areas["scores"] = redact.parquet_files(
        con, settings, sorted(settings.scores_dir.glob("ds=*/*.parquet")), keys)
    # Tables built by the Spark engine (docs/scale_out.md), whatever the engine setting now.
    from personalization.warehouse import spark

    areas["spark_tables"] = spark.erase(con, settings, keys)
    areas["warehouse"] = warehouse
    return areas


def _dated_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))


def _finish(ds: date, settings: Settings, step: str, areas: dict[str, list[dict]],
            seconds: float, extra: dict) -> StepReport:
    summary = _summary(areas)
    removed = sum(a["rows_removed"] for a in summary.values())
    report = {"ds": ds.isoformat(), "step": step, **extra, "rows_removed": removed,
              "areas": summary}
    path = write_report(settings, ds, step, report)
    log_event(logger, "privacy_" + step, ds=ds.isoformat(), rows_removed=removed,
              files=sum(a["files"] for a in summary.values()),
              **{k: v for k, v in extra.items() if isinstance(v, int)}, seconds=seconds)
    held = extra.get("requests_held_for_review", 0)
    warnings = ([f"{held} erasure request(s) for a shared address held for review: "
                 "personalization erasure-reviews"] if held else [])
    return StepReport(step=step, ds=ds.isoformat(), rows_in=removed, rows_out=0,
                      seconds=seconds, status="warning" if warnings else "ok",
                      details={"report": str(path), **extra, "warnings": warnings,
                               "rows_removed": {k: v["rows_removed"] for k, v in summary.items()}})

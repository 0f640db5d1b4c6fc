"""Access requests (GDPR Art. 15): everything held about one person, as JSON and a summary.

`subject_access(email, out_dir, settings)` finds the person(s) the address belongs to (a
profile with that email, or any source record carrying it, joined by identity resolution;
when that is several persons, the operator says which: `_choose_persons`) and writes
`<out_dir>/subject_access.json` and `<out_dir>/summary.md`: profile, source records with
their ids (every delivered version), orders and their lines, an events summary, current
segments and the membership history, scores, the consent history with the record that
decided, what was sent to which ESP (sync state and log, by hash) and which exports listed
them. The request is logged with the address's hash prefix only.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from personalization import lake
from personalization.config import Settings
from personalization.exceptions import PersonalizationError
from personalization.observability import log_event
from personalization.privacy import encryption
from personalization.privacy.emails import email_sha256, email_sha256_sql
from personalization.privacy.ledger import ledger_path, read_parquet_sql
from personalization.sql import literal

logger = logging.getLogger(__name__)

_EMAIL_HASH = email_sha256_sql("email")


class SubjectAccessError(PersonalizationError):
    """The request cannot be answered (no warehouse yet, unreadable output folder)."""


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _lake(settings: Settings, table: str) -> str | None:
    if not lake.partition_files(settings, table):
        return None
    return read_parquet_sql(settings, lake.partition_file(settings, table),
                            ", hive_partitioning = true, union_by_name = true")


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database()"
    ).fetchall()}


def _choose_persons(con: duckdb.DuckDBPyConnection, chosen: list[str] | None,
                    all_persons: bool) -> None:
    """Keep in `sar_persons` the person(s) the request is about. An address on the records of
    several persons (a role address such as info@...) does not say which of them asked:
    answering for all would disclose the others' data, so the operator names the person
    (`chosen`) or, having checked, takes them all (`all_persons`)."""
    found = [r[0] for r in con.execute("SELECT unified_id FROM sar_persons ORDER BY 1").fetchall()]
    if chosen:
        unknown = sorted(set(chosen) - set(found))
        if unknown:
            raise SubjectAccessError(f"not a person whose records carry this address: "
                                     f"{', '.join(unknown)} (they are: {', '.join(found) or 'none'})")
        con.execute("DELETE FROM sar_persons WHERE unified_id NOT IN (SELECT unnest(?::VARCHAR[]))",
                    [chosen])
    elif len(found) > 1 and not all_persons:
        people = con.execute("""
            SELECT s.unified_id, concat_ws(' ', p.first_name, p.last_name), p.city
            FROM sar_persons s LEFT JOIN customer_profiles p USING (unified_id)
            ORDER BY 1 LIMIT 20""").fetchall()
        listed = "; ".join(f"{uid} ({name or 'no name'}, {city or 'no city'})"
                           for uid, name, city in people)
        raise SubjectAccessError(
            f"the records of {len(found)} persons carry this address (a shared address): the "
            "request does not say which of them asked. Check who the requester is, then rerun "
            f"with --person <unified_id> or, for all of them, --all-persons. Persons: {listed}"
            + (" ..." if len(found) > len(people) else ""))


def collect(email: str, settings: Settings, persons: list[str] | None = None,
            all_persons: bool = False) -> dict[str, Any]:
    """Everything held about the person(s) with `email`, as JSON-ready data (`persons`,
    `all_persons`: which of several persons carrying the address, see `_choose_persons`)."""
    if not settings.warehouse_path.exists():
        raise SubjectAccessError(f"warehouse not found at {settings.warehouse_path}: build it first")
    key = email_sha256(email)
    con = encryption.connect_warehouse(settings, read_only=True)
    try:
        encryption.configure(con, settings)
        tables = _tables(con)
        con.execute("CREATE TEMP TABLE sar_records (source VARCHAR, source_id VARCHAR)")
        for table, source, id_column in (("crm/contacts", "crm", "contact_id"),
                                         ("shop/customers", "shop", "customer_id")):
            rel = _lake(settings, table)
            if rel:
                con.execute(f"INSERT INTO sar_records SELECT DISTINCT '{source}', {id_column} "
                            f"FROM {rel} WHERE {_EMAIL_HASH} = ?", [key])
        con.execute(f"""CREATE TEMP TABLE sar_persons AS
            SELECT unified_id FROM customer_profiles WHERE email_sha256 = ? OR
                   (email IS NOT NULL AND {_EMAIL_HASH} = ?)
            UNION SELECT m.unified_id FROM identity_map m JOIN sar_records r USING (source, source_id)
            UNION SELECT unified_id FROM identity_map
                  WHERE source = 'guest' AND {email_sha256_sql('source_id')} = ?""", [key, key, key])
        _choose_persons(con, persons, all_persons)
        persons = [r[0] for r in con.execute("SELECT unified_id FROM sar_persons ORDER BY 1").fetchall()]
        in_persons = "unified_id IN (SELECT unified_id FROM sar_persons)"
        out: dict[str, Any] = {
            "request": {"email_sha256": key,
                        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "persons": persons,
                        "erased": _in_ledger(con, settings, key)},
            "profile": _rows(con, f"SELECT * FROM customer_profiles WHERE {in_persons} ORDER BY unified_id"),
            "identity_records": _rows(con, f"SELECT * FROM identity_map WHERE {in_persons} ORDER BY ALL"),
        }
        out["source_records"] = _source_records(con, settings)
        out["orders"] = _rows(con, f"SELECT * FROM orders WHERE {in_persons} ORDER BY ordered_at, order_id") \
            if "orders" in tables else []
        out["order_items"] = _rows(con, f"SELECT * FROM order_items WHERE {in_persons} ORDER BY order_id, line_number") \
            if "order_items" in tables else []
        out["events_summary"] = _rows(con, f"""
            SELECT event_type, count(*) AS events, min(occurred_at) AS first_at, max(occurred_at) AS last_at
            FROM customer_events WHERE {in_persons} GROUP BY 1 ORDER BY 1""") \
            if "customer_events" in tables else []
        out["segments"] = _segments(con, settings, tables)
        out["segment_membership_history"] = _rows(con, f"""
            SELECT * FROM segment_membership_history WHERE {in_persons} ORDER BY segment, entered_on""") \
            if "segment_membership_history" in tables else []
        out["scores"] = _rows(con, f"SELECT * FROM customer_scores WHERE {in_persons}") \
            if "customer_scores" in tables else []
        out["rfm"] = _rows(con, f"SELECT * FROM customer_rfm WHERE {in_persons}") \
            if "customer_rfm" in tables else []
        out["consent"] = {
            "decision": _rows(con, f"SELECT * FROM consent_audit WHERE {in_persons}")
            if "consent_audit" in tables else [],
            "history": _consent_history(con, settings),
        }
        out["emails_of_records"] = sorted({r.get("email") for r in out["source_records"]
                                           if r.get("email")})
    finally:
        con.close()
    hashes = sorted({key, *(email_sha256(e) for e in out["emails_of_records"])})
    out["esp"] = _esp(settings, hashes)
    out["exports"] = _exports(settings, persons)
    return out


def _in_ledger(con: duckdb.DuckDBPyConnection, settings: Settings, key: str) -> bool:
    path = ledger_path(settings)
    if not path.exists():
        return False
    return bool(con.execute(f"SELECT count(*) FROM {read_parquet_sql(settings, path)} "
                            "WHERE key_kind = 'email' AND key_sha256 = ?", [key]).fetchone()[0])


def _source_records(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[dict]:
    """Every delivered version of the person's CRM and shop records (lake rows, with ds)."""
    out = []
    for table, source, id_column in (("crm/contacts", "crm", "contact_id"),
                                     ("shop/customers", "shop", "customer_id")):
        rel = _lake(settings, table)
        if rel is None:
            continue
        for row in _rows(con, f"""
                SELECT * EXCLUDE (_line_number) FROM {rel}
                WHERE {id_column} IN (SELECT source_id FROM identity_map
                                      WHERE source = '{source}'
                                        AND unified_id IN (SELECT unified_id FROM sar_persons))
                ORDER BY {id_column}, ds"""):
            out.append({"source": source, "table": table, **row})
    return out


def _consent_history(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[dict]:
    rel = _lake(settings, "crm/contacts")
    if rel is None:
        return []
    return _rows(con, f"""
        SELECT contact_id, ds AS delivered_on, updated_at, email_opt_in, opt_in_at, unsubscribed_at
        FROM {rel}
        WHERE contact_id IN (SELECT source_id FROM identity_map WHERE source = 'crm'
                             AND unified_id IN (SELECT unified_id FROM sar_persons))
          AND (email_opt_in IS NOT NULL OR unsubscribed_at IS NOT NULL)
        ORDER BY updated_at, ds, contact_id""")


def _segments(con: duckdb.DuckDBPyConnection, settings: Settings, tables: set[str]) -> list[dict]:
    from personalization.warehouse.catalog import list_segments

    try:
        names = [s.name for s in list_segments(settings)]
    except PersonalizationError:
        names = []
    out = []
    for name in names:
        if name in tables:
            for row in _rows(con, f'SELECT * FROM "{name}" WHERE CAST(unified_id AS VARCHAR) IN '
                                  "(SELECT unified_id FROM sar_persons)"):
                out.append({"segment": name, **row})
    return out


def _esp(settings: Settings, hashes: list[str]) -> dict[str, list[dict]]:
    """What the ESP sync recorded for these email hashes (state per list, every action)."""
    log = settings.home / "esp_sync.duckdb"
    if not log.exists():
        return {"state": [], "log": [], "erasures": []}
    con = duckdb.connect(str(log), read_only=True)
    try:
        tables = _tables(con)
        params = [hashes]
        where = "email_sha256 IN (SELECT unnest(?::VARCHAR[]))"
        return {
            "state": _rows(con, f"SELECT esp, list_name, email_sha256, synced_ds FROM esp_sync_state "
                                f"WHERE {where} ORDER BY ALL", params) if "esp_sync_state" in tables else [],
            "log": _rows(con, f"SELECT esp, ds, logged_at, list_name, email_sha256, action, status "
                              f"FROM esp_sync_log WHERE kind = 'record' AND {where} ORDER BY logged_at",
                         params) if "esp_sync_log" in tables else [],
            "erasures": _rows(con, f"SELECT * FROM esp_erasures WHERE {where}", params)
            if "esp_erasures" in tables else [],
        }
    finally:
        con.close()


def _exports(settings: Settings, persons: list[str]) -> list[dict]:
    """Which published export files list the person (date, segment, variant, holdout)."""
    if not persons:
        return []
    files = sorted(settings.exports_dir.glob("*/segments/*.parquet"))
    files = [f for f in files if not f.parent.parent.is_symlink()]
    if not files:
        return []
    con = duckdb.connect()
    try:
        rows = []
        for f in files:
            rows += [{"export_ds": f.parent.parent.name, "segment": f.stem, **r}
                     for r in _rows(con, f"SELECT unified_id, variant, is_holdout FROM "
                                         f"read_parquet({literal(f)}) WHERE CAST(unified_id AS VARCHAR) "
                                         "IN (SELECT unnest(?::VARCHAR[]))", [persons])]
        return rows
    finally:
        con.close()


def _summary(data: dict[str, Any]) -> str:
    req = data["request"]
    lines = [
        "# Subject access report", "",
        f"- request (email hash): `{req['email_sha256']}`",
        f"- generated at: {req['generated_at']}",
        f"- persons found: {len(req['persons'])} ({', '.join(req['persons']) or 'none'})",
        f"- erased: {'yes' if req['erased'] else 'no'}", "",
        "| what | items |", "|---|---|",
    ]
    for key in ("profile", "source_records", "orders", "order_items", "events_summary",
                "segments", "segment_membership_history", "scores", "rfm", "exports"):
        lines.append(f"| {key.replace('_', ' ')} | {len(data.get(key) or [])} |")
    lines += [f"| consent records | {len(data['consent']['history'])} |",
              f"| ESP sync actions | {len(data['esp']['log'])} |", ""]
    for d in data["consent"]["decision"]:
        lines.append(f"Consent used: {d.get('consent_source') or 'none'} record "
                     f"`{d.get('consent_source_id')}` recorded at {d.get('consent_recorded_at')} "
                     f"(opted in: {d.get('is_opted_in')}, unsubscribed: {d.get('is_unsubscribed')}).")
    sent = sorted({(r["esp"], r["list_name"]) for r in data["esp"]["state"]})
    lines.append("")
    lines.append("Sent to: " + (", ".join(f"{esp} / {name}" for esp, name in sent) or "no ESP list"))
    lines += ["", "Every value is in subject_access.json."]
    return "\n".join(lines) + "\n"


def subject_access(email: str, out_dir: Path, settings: Settings, persons: list[str] | None = None,
                   all_persons: bool = False) -> Path:
    """Write the access report for `email` into `out_dir`; returns the JSON path."""
    if not email or "@" not in email:
        raise SubjectAccessError("give the person's email address (--email)")
    data = collect(email, settings, persons, all_persons)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "subject_access.json"
        path.write_text(json.dumps(data, indent=2, default=_json_default, ensure_ascii=False) + "\n",
                        encoding="utf-8")
        (out_dir / "summary.md").write_text(_summary(data), encoding="utf-8")
    except OSError as e:
        raise SubjectAccessError(f"cannot write the report to {out_dir}: {e.strerror}") from None
    # Logged without the address: a hash prefix is enough to match it to the request.
    log_event(logger, "subject_access", email_sha256_prefix=data["request"]["email_sha256"][:12],
              persons=len(data["request"]["persons"]), out=str(out_dir))
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)

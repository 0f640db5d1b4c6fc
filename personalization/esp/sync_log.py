"""The ESP sync log and sync state: a DuckDB file of its own (`<home>/esp_sync.duckdb`).

Kept apart from the warehouse so a sync never contends with dbt for DuckDB's one writer.

- `esp_sync_log`: one row per HTTP attempt (`kind = 'http'`) and one per record outcome
  (`kind = 'record'`). Records carry `email_sha256`, never the plain address.
- `esp_sync_state`: what each ESP list/segment holds according to our successful syncs
  (`fields_hash` tells whether merge fields changed). A rerun after a crash diffs against
  it, so batches already applied are not sent again.
- `esp_erasures`: erasures already propagated per ESP.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from personalization.esp.http import CallRecord
from personalization.privacy.emails import email_sha256

_DDL = """
create table if not exists esp_sync_log (
    run_id varchar, kind varchar, esp varchar, ds date, logged_at timestamp,
    endpoint varchar, http_status integer, attempt integer, seconds double, records integer,
    list_name varchar, email_sha256 varchar, action varchar, status varchar, error varchar
);
create table if not exists esp_sync_state (
    esp varchar, list_name varchar, email_sha256 varchar, fields_hash varchar, synced_ds date,
    primary key (esp, list_name, email_sha256)
);
create table if not exists esp_erasures (
    esp varchar, email_sha256 varchar, erased_ds date, primary key (esp, email_sha256)
);
"""

_LOG_COLUMNS = ("run_id", "kind", "esp", "ds", "logged_at", "endpoint", "http_status",
                "attempt", "seconds", "records", "list_name", "email_sha256", "action",
                "status", "error")


def fields_hash(fields: dict[str, str]) -> str:
    """Fingerprint of a contact's fields: a changed value means the contact is written again."""
    return hashlib.md5(json.dumps(fields, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class RecordOutcome:
    """What happened to one record in one list."""

    list_name: str
    email: str
    action: str  # add, update (list_name "@contact": the contact's fields), remove, delete
    status: str  # ok, failed
    error: str | None = None
    fields_hash: str | None = None


def sync_db_path(home: Path) -> Path:
    return home / "esp_sync.duckdb"


class SyncLog:
    """Writes the log and state of one sync run; thread-safe for the HTTP callback."""

    def __init__(self, path: Path, esp: str, ds, run_id: str):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.esp, self.ds, self.run_id = path, esp, ds, run_id
        self._con = duckdb.connect(str(path))
        self._con.execute(_DDL)
        self._calls: list[CallRecord] = []
        self._lock = threading.Lock()
        self.http_calls = 0
        self.http_retries = 0

    def close(self) -> None:
        self.flush()
        self._con.close()

    # --- HTTP calls -------------------------------------------------------------------
    def on_call(self, call: CallRecord) -> None:
        """Callback for `EspHttpClient`: buffered, written with the next flush."""
        with self._lock:
            self._calls.append(call)
            self.http_calls += 1
            self.http_retries += call.attempt > 1

    # --- reading state ----------------------------------------------------------------
    def state(self, lists: list[str]) -> dict[str, dict[str, str]]:
        """`{list_name: {email_sha256: fields_hash}}` for this ESP."""
        out: dict[str, dict[str, str]] = {name: {} for name in lists}
        rows = self._con.execute(
            "select list_name, email_sha256, fields_hash from esp_sync_state where esp = ?",
            [self.esp]).fetchall()
        for list_name, sha, fields_hash in rows:
            out.setdefault(list_name, {})[sha] = fields_hash
        return out

    def erased(self) -> set[str]:
        rows = self._con.execute("select email_sha256 from esp_erasures where esp = ?",
                                 [self.esp]).fetchall()
        return {r[0] for r in rows}

    # --- writing ----------------------------------------------------------------------
    def record(self, outcomes: list[RecordOutcome]) -> None:
        """Write outcomes (and pending HTTP calls) and update the state, in one transaction.

        Called once per batch, so a crash loses at most the batch in flight, and that batch
        is an idempotent upsert/delete that the rerun simply sends again.
        """
        now = datetime.now(UTC).replace(tzinfo=None)  # audit timestamp, not business logic
        with self._lock:
            calls, self._calls = self._calls, []
        rows = [self._call_row(c, now) for c in calls]
        hashed = [(o, email_sha256(o.email)) for o in outcomes]
        rows += [(self.run_id, "record", self.esp, self.ds, now, None, None, None, None, None,
                  o.list_name, sha, o.action, o.status, o.error) for o, sha in hashed]
        if not rows:
            return
        log = pa.table(list(zip(*rows, strict=True)), names=list(_LOG_COLUMNS))
        ok = [(o, sha) for o, sha in hashed if o.status == "ok"]
        upserts = pa.table({
            "list_name": [o.list_name for o, _ in ok if o.action in ("add", "update")],
            "email_sha256": [s for o, s in ok if o.action in ("add", "update")],
            "fields_hash": [o.fields_hash for o, _ in ok if o.action in ("add", "update")],
        }, schema=pa.schema([("list_name", pa.string()), ("email_sha256", pa.string()),
                             ("fields_hash", pa.string())]))
        removes = pa.table({
            "list_name": [o.list_name for o, _ in ok if o.action == "remove"],
            "email_sha256": [s for o, s in ok if o.action == "remove"],
        }, schema=pa.schema([("list_name", pa.string()), ("email_sha256", pa.string())]))
        deletes = pa.table({"email_sha256": [s for o, s in ok if o.action == "delete"]},
                           schema=pa.schema([("email_sha256", pa.string())]))
        con = self._con
        con.execute("begin")
        try:
            con.register("log_rows", log)
            con.execute("insert into esp_sync_log select * from log_rows")
            con.register("upserts", upserts)
            con.execute("""
                insert or replace into esp_sync_state
                select ?, list_name, email_sha256, fields_hash, ? from upserts""",
                        [self.esp, self.ds])
            con.register("removes", removes)
            con.execute("""
                delete from esp_sync_state s using removes r where s.esp = ?
                and s.list_name = r.list_name and s.email_sha256 = r.email_sha256""",
                        [self.esp])
            con.register("deletes", deletes)
            con.execute("""
                delete from esp_sync_state where esp = ?
                and email_sha256 in (select email_sha256 from deletes)""", [self.esp])
            con.execute("""
                insert or replace into esp_erasures
                select ?, email_sha256, ? from deletes""", [self.esp, self.ds])
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        finally:
            for name in ("log_rows", "upserts", "removes", "deletes"):
                con.unregister(name)

    def flush(self) -> None:
        self.record([])

    def _call_row(self, c: CallRecord, now: datetime) -> tuple:
        return (self.run_id, "http", self.esp, self.ds, now, c.endpoint, c.status, c.attempt,
                c.seconds, c.records, None, None, None,
                "ok" if c.status is not None and c.status < 400 else "failed", c.error)

"""The trigger runner's own DuckDB file: the events it has read, how far it read each intake
day file, and every decision it made (`sends`).

Only the runner writes it (DuckDB's lock makes a second runner fail at once). Decisions are
also published into the lake (`raw/triggers/sends/ds=<decided day>/`), which the nightly
build turns into the warehouse table `trigger_sends`: the warehouse never waits for the
runner's lock, nor the runner for the warehouse's.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from personalization.config import Settings
from personalization.exceptions import TriggerRunnerBusy
from personalization.extract.partition import partition_dir, write_partition
from personalization.intake.store import complete_length, day_file
from personalization.privacy import encryption
from personalization.sql import literal

logger = logging.getLogger(__name__)

SCHEMA = """
create table if not exists offsets (path varchar primary key, bytes bigint not null);
create table if not exists received_events (
    event_id varchar not null, occurred_at timestamp, received_on date,
    anonymous_id varchar, customer_id varchar, email_sha256 varchar,
    event_type varchar, sku varchar, campaign_id varchar
);
create table if not exists sends (
    trigger varchar not null, dedup_key varchar primary key, unified_id varchar,
    email_sha256 varchar, status varchar not null, reason varchar, due_at timestamp,
    decided_at timestamp not null, sent_at timestamp, attempts integer not null default 0,
    campaign varchar
);
"""
EVENT_COLUMNS = ("event_id", "occurred_at", "anonymous_id", "customer_id", "email_sha256",
                 "event_type", "sku", "campaign_id")
SENDS_COLUMNS = ("trigger", "dedup_key", "unified_id", "email_sha256", "status", "reason",
                 "due_at", "decided_at", "sent_at", "attempts", "campaign")


def open_state(settings: Settings) -> duckdb.DuckDBPyConnection:
    """The runner's state database (created on first use).

    Raises:
        TriggerRunnerBusy: another runner holds it.
    """
    root = settings.triggers_state_dir
    root.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(root / "state.duckdb"), config=settings.duckdb_config())
    except duckdb.IOException as e:
        raise TriggerRunnerBusy(f"another trigger runner is using {root / 'state.duckdb'}: {e}") from None
    con.execute("set TimeZone = 'UTC'")
    encryption.configure(con, settings)  # lake, ledger and context are read/written with it
    con.execute(SCHEMA)
    return con


def ingest(con: duckdb.DuckDBPyConnection, settings: Settings, today: date) -> int:
    """Append the intake's new complete lines (today's and yesterday's files) to `received_events`.

    The read position and the rows move together in one transaction, and ids already held
    are skipped, so a kill at any point neither loses nor doubles an event.

    Returns:
        How many new events were added.
    """
    added = 0
    spec = ", ".join(f"'{c}': '{'TIMESTAMP' if c == 'occurred_at' else 'VARCHAR'}'"
                     for c in EVENT_COLUMNS)
    for ds in (today - timedelta(days=1), today):
        path = day_file(settings.intake_dir, ds)
        end = complete_length(path)
        row = con.execute("select bytes from offsets where path = ?", [str(path)]).fetchone()
        start = row[0] if row else 0
        if end <= start:
            continue
        with path.open("rb") as fh, tempfile.NamedTemporaryFile(
                suffix=".jsonl", dir=settings.triggers_state_dir) as tmp:
            fh.seek(start)
            tmp.write(fh.read(end - start))
            tmp.flush()
            con.execute("begin")
            try:
                before = con.execute("select count(*) from received_events").fetchone()[0]
                con.execute(f"""
                    insert into received_events ({", ".join(EVENT_COLUMNS)}, received_on)
                    select {", ".join(EVENT_COLUMNS)}, ?::date
                    from read_json(?, format='newline_delimited', columns={{{spec}}})
                    where event_id not in (select event_id from received_events)
                    qualify row_number() over (partition by event_id) = 1
                """, [ds, tmp.name])
                added += con.execute("select count(*) from received_events").fetchone()[0] - before
                con.execute("insert or replace into offsets values (?, ?)", [str(path), end])
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise
    return added


def prune(con: duckdb.DuckDBPyConnection, settings: Settings, now: datetime) -> int:
    """Forget events older than the retention window (the rules never look further back)."""
    cutoff = now - timedelta(hours=settings.trigger_event_retention_hours)
    n = con.execute("select count(*) from received_events where occurred_at < ?", [cutoff]).fetchone()[0]
    if n:
        con.execute("delete from received_events where occurred_at < ?", [cutoff])
    return n


def publish_sends(con: duckdb.DuckDBPyConnection, settings: Settings, days: set[date]) -> None:
    """Rewrite the lake partitions of the decision days touched (atomic per partition)."""
    lake = settings.lake_dir
    cols = ", ".join(SENDS_COLUMNS)
    for day in sorted(days):
        def write(path: Path, day: date = day) -> None:
            con.execute(f"""copy (select {cols} from sends
                                  where decided_at::date = ? order by decided_at, dedup_key)
                            to {literal(path)} (format parquet{encryption.copy_options(con)})""", [day])
        write_partition(partition_dir(lake, "raw", "triggers", "sends", day), lake,
                        f"triggers-sends-{day.isoformat()}-", write)

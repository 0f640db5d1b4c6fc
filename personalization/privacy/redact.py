"""Remove erased persons' rows from every kind of copy, each file replaced atomically.

Each function takes a DuckDB connection holding a ledger-shaped table (`keys`: the hashes
to erase) and returns one entry per file it changed: `{"path", "rows_removed"}` (paths
relative to the home). Nothing is rewritten when no row matches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import re
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
from isal import igzip_threaded

from personalization import lake
from personalization.config import Settings
from personalization.diskspace import gib
from personalization.exceptions import DiskSpaceError, PersonalizationError
from personalization.observability import log_event
from personalization.privacy import encryption, erased_events
from personalization.privacy.ledger import (
    copy_atomic,
    own_columns,
    own_parquet_sql,
    read_parquet_sql,
    relation_columns,
    write_parquet_atomic,
)
from personalization.privacy.matching import (
    TOKEN_SPLIT,
    erased_condition,
    ledger_kinds,
    raw_hits_sql,
    tokens_can_match,
)
from personalization.sql import literal

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 32 * 1024 * 1024

# The landing contract (docs/design.md): the file each lake table comes from.
LANDING_FILES = {
    "crm/contacts": "contacts.csv",
    "crm/erasure_requests": "erasure_requests.csv",
    "shop/customers": "customers.csv",
    "shop/orders": "orders.jsonl",
    "shop/order_items": "orders.jsonl",
    "pixel/events": "events.jsonl.gz",
}
# The lake tables whose rows each come from one landing line, and the key that line carries
# (checked before the line is blanked, see `landing_lines`).
LINE_KEYS = {"crm/contacts": "contact_id", "shop/customers": "customer_id",
             "shop/orders": "order_id", "shop/order_items": "order_id", "pixel/events": "event_id"}
# Erasure requests hold the requester's plain email until every ESP confirmed the deletion
# (purge.py); the other lake tables are redacted as soon as a person is erased.
PERSON_TABLES = ("crm/contacts", "shop/customers", "shop/orders", "shop/order_items",
                 "pixel/events", "pixel/intake_events", "triggers/sends")


def _rel(settings: Settings, path: Path) -> str:
    try:
        return path.relative_to(settings.home).as_posix()
    except ValueError:
        return str(path)


def parquet_files(con: duckdb.DuckDBPyConnection, settings: Settings, files: list[Path],
                  keys: str, *, foreign: bool = False, all_hit: bool = False) -> list[dict]:
    """Rewrite each Parquet file without the rows that match `keys`.

    `foreign`: files another engine wrote (Spark's tables): read as they are (partition
    columns stay in the folder names, no lake encryption) and written back as plain Parquet.
    `all_hit`: every file is known to hold a match (`lake_hits` found them), so none is
    scanned for a count first: the rows removed are its rows (from the footer) less the
    rows written (a 1M backfill partition of 50M events was read once more for the count).
    """
    changed = []
    kinds = ledger_kinds(con, keys)
    for path in files:
        source = (f"read_parquet({literal(str(path))}, hive_partitioning = false)" if foreign
                  else own_parquet_sql(settings, path))
        columns = relation_columns(con, source)
        condition = erased_condition(columns, ledger=keys, source=source, kinds=kinds)
        if condition is None:
            continue
        count = f"SELECT count(*) FROM {source}"
        before = con.execute(count if all_hit else f"{count} WHERE {condition}").fetchone()[0]
        if not before:
            continue
        query = f"SELECT {own_columns(columns, path)} FROM {source} WHERE NOT ({condition})"
        if foreign:
            written = copy_atomic(con, query, path, "FORMAT parquet, COMPRESSION snappy")
        else:
            written = write_parquet_atomic(con, settings, query, path)
        removed = before - written if all_hit else before
        if removed:
            changed.append({"path": _rel(settings, path), "rows_removed": removed})
    return changed


def lake_tables(con: duckdb.DuckDBPyConnection, settings: Settings, keys: str,
                tables: tuple[str, ...] = PERSON_TABLES, ds: str | None = None) -> list[dict]:
    """Lake partitions (`raw/<table>/ds=*`, or only `ds=<ds>`) without the erased rows.

    Only partitions holding a match are read twice and rewritten: one scan per table finds
    them."""
    return parquet_files(con, settings, lake_hits(con, settings, keys, tables, ds), keys,
                         all_hit=True)


def lake_hits(con: duckdb.DuckDBPyConnection, settings: Settings, keys: str,
              tables: tuple[str, ...] = PERSON_TABLES, ds: str | None = None, *,
              lines: bool = False) -> list[Path]:
    """The lake partition files holding rows that match `keys`, one scan per table.

    `lines`: also put each matched row's landing line into temp table `landing_hits`
    (`source_file`, `line_number` as the extract numbers it, `witness`: the row's key, which
    the line must carry), for `landing_lines`."""
    if lines:
        con.execute("CREATE OR REPLACE TEMP TABLE landing_hits "
                    "(source_file VARCHAR, line_number BIGINT, witness VARCHAR)")
    hits = []
    kinds = ledger_kinds(con, keys)
    for table in tables:
        if not lake.partition_files(settings, table, ds):
            continue
        glob = read_parquet_sql(settings, lake.partition_file(settings, table, ds),
                                ", filename = true, union_by_name = true, hive_partitioning = false")
        condition = erased_condition([c for c in relation_columns(con, glob) if c != "filename"],
                                     ledger=keys, source=glob, kinds=kinds)
        if condition is None:
            continue
        key = LINE_KEYS.get(table) if lines else None
        row = f", _line_number, CAST({key} AS VARCHAR) AS witness" if key else ""
        con.execute(f"CREATE OR REPLACE TEMP TABLE lake_hit_rows AS "
                    f"SELECT filename{row} FROM {glob} WHERE {condition}")
        hits += sorted(Path(r[0]) for r in con.execute(
            "SELECT DISTINCT filename FROM lake_hit_rows").fetchall())
        if key:
            source, name = table.split("/")[0], LANDING_FILES[table]
            con.execute(f"""INSERT INTO landing_hits
                SELECT '{source}/' || regexp_extract(filename, 'ds=([^/]+)', 1) || '/{name}',
                       _line_number, witness FROM lake_hit_rows""")
    con.execute("DROP TABLE IF EXISTS lake_hit_rows")
    return hits


def quarantine_hits(con: duckdb.DuckDBPyConnection, settings: Settings, keys: str,
                    ds: str | None = None) -> None:
    """Temp table `quarantine_hits(path, row, source_file, line_number, raw)`: the quarantined
    lines whose raw text holds any erased person's email or id (`row`: position in `path`)."""
    con.execute("CREATE OR REPLACE TEMP TABLE quarantine_hits (path VARCHAR, row BIGINT, "
                "source_file VARCHAR, line_number BIGINT, raw VARCHAR)")
    kinds = ledger_kinds(con, keys)
    if not tokens_can_match(kinds):
        return
    for part in lake.area_partitions(settings, "quarantine", ds):
        path = part / lake.PART_FILE
        if not path.exists():
            continue
        con.execute(f"CREATE OR REPLACE TEMP TABLE q_lines AS SELECT * FROM "
                    f"{own_parquet_sql(settings, path, ', file_row_number = true')}")
        con.execute(f"""INSERT INTO quarantine_hits
            SELECT {literal(str(path))}, file_row_number, source_file, line_number, raw FROM q_lines
            WHERE file_row_number IN ({raw_hits_sql('q_lines', 'raw', 'file_row_number', keys, kinds)})""")
    con.execute("DROP TABLE IF EXISTS q_lines")


def rewrite_quarantine(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[dict]:
    """Rewrite each quarantine partition in `quarantine_hits` without those lines."""
    changed = []
    for path, removed in con.execute("SELECT path, count(*) FROM quarantine_hits "
                                     "GROUP BY path ORDER BY path").fetchall():
        source = own_parquet_sql(settings, path, ", file_row_number = true")
        write_parquet_atomic(con, settings, f"""
            SELECT {own_columns(relation_columns(con, source), path, hidden=('file_row_number',))}
            FROM {source}
            WHERE file_row_number NOT IN (SELECT row FROM quarantine_hits WHERE path = {literal(path)})
            ORDER BY file_row_number""", Path(path))
        changed.append({"path": _rel(settings, Path(path)), "rows_removed": removed})
    return changed


def landing_lines(con: duckdb.DuckDBPyConnection, settings: Settings, keys: str,
                  candidates: list[Path]) -> list[dict]:
    """The landing copy, by line numbers: blank the lines of the rows that `lake_hits(...,
    lines=True)` and `quarantine_hits` found, instead of tokenising every line of every file.

    Every non-blank line of an extracted file became exactly one lake or quarantine row that
    keeps its line number (the extract checks rows_in = loaded + quarantined; a CSV's header
    is never a person), so these are the lines naming the person. Blanking keeps the other
    lines' numbers (the extract skips blank lines), so later nights and a rerun of the date
    load the same rows. Token matching (`landing_files`) stays for what the numbers cannot
    vouch for: a file whose line at a number does not carry its row (lines dropped by an
    older version's redaction, or a file changed since), and `candidates` never extracted
    (no load log for their date)."""
    wanted: dict[Path, dict[int, list[str]]] = {}
    names = ", ".join(literal(name) for name in sorted(set(LANDING_FILES.values())))
    for source_file, number, witnesses in con.execute(f"""
            SELECT source_file, line_number, list(witness) FROM (
                SELECT source_file, line_number, witness FROM landing_hits
                UNION ALL SELECT source_file, line_number, raw FROM quarantine_hits)
            WHERE split_part(source_file, '/', -1) IN ({names})
              AND NOT contains(source_file, ':')  -- the intake's files: `erase` reads them by tokens
            GROUP BY ALL""").fetchall():
        # The extract numbers a CSV's data lines after the header: line 1 is the file's line 2.
        physical = number + 1 if source_file.endswith(".csv") else number
        wanted.setdefault(settings.landing_dir / source_file, {})[physical] = witnesses
    by_tokens = [p for p in candidates if p not in wanted and not _extracted(settings, p)]
    changed = []
    files = [(path, lines) for path, lines in sorted(wanted.items()) if path.is_file()]
    # Several files at a time: ISA-L inflates and deflates outside the GIL (four days' events
    # files of 1M people: 7.5 s one after the other, 4.1 s two at a time).
    with ThreadPoolExecutor(max_workers=settings.duckdb_threads) as pool:
        results = list(pool.map(lambda item: _blank_lines(*item), files))
    for (path, _), blanked in zip(files, results, strict=True):
        if blanked is None:
            log_event(logger, "privacy_landing_lines_mismatch", logging.WARNING,
                      file=_rel(settings, path))
            by_tokens.append(path)
        else:
            changed.append({"path": _rel(settings, path), "rows_removed": blanked})
    changed += landing_files(con, settings, keys, sorted(by_tokens))
    return sorted(changed, key=lambda c: c["path"])


def _extracted(settings: Settings, path: Path) -> bool:
    """Whether the landing file `path` (`<source>/<ds>/<name>`) has a load log."""
    source, ds, name = path.relative_to(settings.landing_dir).parts[-3:]
    return any(lake.partition_files(settings, table, ds, area="load_log")
               for table, file in LANDING_FILES.items() if file == name and table.startswith(f"{source}/"))


def _blank_lines(path: Path, lines: dict[int, list[str]]) -> int | None:
    """Empty the physical `lines` (1-based) of `path`, each after checking that it carries
    every token of each of its witnesses; None (nothing written) when one does not.

    Only those lines' bytes change: the others keep their numbers (the lake's `_line_number`
    stays valid for the next erasure and a re-extract), their bytes (invalid UTF-8, CRLF, a
    BOM) and so their quarantine reasons. Streamed chunk by chunk: a backfill's text (65 GB
    for 3M people) never has to fit in memory; chunks without a wanted line are copied as
    they are."""
    from personalization.extract.lines import open_landing  # as the extract reads it

    wanted = sorted(lines)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open_landing(path) as src, _landing_writer(path, tmp) as dst:
            next_line, rest, i = 1, b"", 0  # next_line: the number of the line `rest` starts
            while True:
                chunk = src.read(_CHUNK_BYTES)
                if not chunk:  # the last line (it may lack "\n", or be empty)
                    if i < len(wanted) and wanted[i] == next_line:
                        if not _carries_all(rest, lines[wanted[i]]):
                            return None
                        i += 1
                    else:
                        dst.write(rest)
                    break
                end = chunk.rfind(b"\n") + 1
                if not end:
                    rest += chunk
                    continue
                # Whole lines: `rest` (which holds no "\n") and the chunk up to its last "\n".
                # The wanted ones among them are left out by their offsets, the rest written
                # as it is: no copy of the text, no Python object per line.
                data = memoryview(chunk)
                newlines = np.flatnonzero(np.frombuffer(chunk, np.uint8, count=end) == 10)
                count, done = len(newlines), 0
                if not (i < len(wanted) and wanted[i] == next_line):
                    dst.write(rest)
                while i < len(wanted) and wanted[i] < next_line + count:
                    k = wanted[i] - next_line
                    start = int(newlines[k - 1]) + 1 if k else 0
                    stop = int(newlines[k])
                    line = bytes(data[start:stop]) if k else rest + chunk[:stop]
                    if not _carries_all(line, lines[wanted[i]]):
                        return None
                    dst.write(data[done:start])
                    done = stop  # the line's "\n" stays
                    i += 1
                dst.write(data[done:end])
                rest = chunk[end:]
                next_line += count
            if i < len(wanted):  # a line past the end of the file
                return None
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return len(lines)


def _carries_all(line: bytes, witnesses: list[str]) -> bool:
    tokens = set(re.split(TOKEN_SPLIT, line.decode("utf-8", errors="replace")))
    return all(_carries(tokens, w) for w in witnesses)


def _carries(tokens: set[str], witness: str | None) -> bool:
    # A quarantined pixel line is stored minimised (dropped keys, IPs masked): its other
    # tokens must all be on the landing line.
    need = {t for t in re.split(TOKEN_SPLIT, witness or "") if t and "<ip>" not in t}
    return bool(need) and need <= tokens


def landing_files(con: duckdb.DuckDBPyConnection, settings: Settings, keys: str,
                  files: list[Path]) -> list[dict]:
    """Landing files (plain or gzip) with the lines that name an erased person blanked.

    Every line is read as text with the extract's line reader, so malformed lines are
    caught too: a line goes when any of its tokens is an erased email, id or email hash."""
    from personalization.extract.lines import streamed_lines  # the extract's line reader

    changed = []
    kinds = ledger_kinds(con, keys)
    if not tokens_can_match(kinds):
        return changed
    for path in files:
        if not path.is_file():
            continue
        # A CSV's first line is its header, never a person.
        header = " WHERE line_number > 1" if path.name.endswith(".csv") else ""
        with streamed_lines(con, path, "l_lines", f"SELECT * FROM batch_lines{header}"):
            hits = {r[0] for r in con.execute(
                raw_hits_sql("l_lines", "raw", "line_number", keys, kinds)).fetchall()}
        if not hits:
            continue
        if _blank_lines(path, dict.fromkeys(hits, [])) is None:
            raise PersonalizationError(f"landing file {path} changed while it was being redacted")
        changed.append({"path": _rel(settings, path), "rows_removed": len(hits)})
    return changed


@contextmanager
def _landing_writer(path: Path, tmp: Path):
    """A writer of `tmp` in `path`'s form: gzip'd (no name, mtime 0: the same bytes for the
    same lines) when `path` is."""
    from personalization.extract.lines import is_gzip  # as the extract reads it

    with tmp.open("wb") as raw:
        if not is_gzip(path):
            yield raw
            return
        # ISA-L's deflate (as the generator writes landing files), level 2: on a 400 MB
        # events day 0.45 CPU s against zlib level 6's 4.7, for a 12% larger file (zlib
        # level 1: 2.6 s, 21% larger); compressing was 75% of rewriting a landing file.
        # In a second thread (ISA-L releases the GIL), beside the reading and splitting.
        with igzip_threaded.open(raw, "wb", compresslevel=2, threads=1) as gz:
            yield gz


def landing_for(settings: Settings, changed_lake: list[dict]) -> list[Path]:
    """The landing files that fed the lake partitions in `changed_lake`."""
    out = set()
    for entry in changed_lake:
        parts = Path(entry["path"]).parts  # lake/raw|quarantine/<source>/<table>/ds=<ds>/...
        try:
            i = parts.index("raw") if "raw" in parts else parts.index("quarantine")
        except ValueError:
            continue
        source, table, ds = parts[i + 1], parts[i + 2], parts[i + 3].removeprefix("ds=")
        name = LANDING_FILES.get(f"{source}/{table}")
        if name:
            out.add(settings.landing_dir / source / ds / name)
    return sorted(out)


def landing_person_files(settings: Settings) -> list[Path]:
    """Every CRM and shop landing file that can name a person (all dates): on a night with
    new erasures those the lake knows nothing of (never extracted) are read by tokens
    (`landing_lines`); pixel files follow their lake partitions."""
    root = settings.landing_dir
    return sorted([*root.glob("crm/*/contacts.csv"), *root.glob("shop/*/customers.csv"),
                   *root.glob("shop/*/orders.jsonl")])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _rewrite_without(con: duckdb.DuckDBPyConnection, path: Path, source: str, keys: str,
                     kinds: frozenset[str], options: str) -> int:
    """Rewrite the file `path` (read as `source`) without the rows of erased persons (keys of
    `kinds`), in the same format (`options` of COPY) and row order; returns the rows removed."""
    condition = erased_condition(relation_columns(con, source), ledger=keys, source=source,
                                 kinds=kinds)
    if condition is None:
        return 0
    removed = con.execute(f"SELECT count(*) FROM {source} WHERE {condition}").fetchone()[0]
    if removed:
        copy_atomic(con, f"SELECT * FROM {source} WHERE NOT ({condition})", path, options)
    return removed


def _rewrite_csv(con: duckdb.DuckDBPyConnection, path: Path, keys: str,
                 kinds: frozenset[str]) -> int:
    """Drop matching rows of a CSV written by the export or the file drop; cells are read
    and written as text, so everything else stays as it was."""
    return _rewrite_without(con, path, f"read_csv({literal(path)}, header = true, all_varchar = true)",
                            keys, kinds, "FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"'")


def _rewrite_plain_parquet(con: duckdb.DuckDBPyConnection, path: Path, keys: str,
                           kinds: frozenset[str]) -> int:
    # Rows keep their order (exports are sorted by unified_id).
    return _rewrite_without(con, path, f"read_parquet({literal(path)})", keys, kinds,
                            "FORMAT parquet, COMPRESSION zstd")


def published_folders(con: duckdb.DuckDBPyConnection, settings: Settings, folders: list[Path],
                      keys: str, ds: str, skip: tuple[str, ...] = ("erasures.csv",)) -> list[dict]:
    """Export or file-drop folders: rewrite their segment and delta files without erased
    persons, update the checksums, sizes and row counts in each `manifest.json`, and record
    the redaction there (`redactions`).

    A night's export and drop hold ≈ 150 files, most of them small enough that DuckDB reads
    each on one thread: they are rewritten side by side, one cursor per worker
    (`duckdb_threads`), which see `keys` through a plain table (a temp table is its
    connection's own)."""
    files = [(folder, path) for folder in folders
             for path in sorted(p for p in folder.rglob("*") if p.is_file())
             if path.suffix in (".csv", ".parquet") and path.name not in skip
             and not path.name.startswith(".")]
    if not files:
        return []
    shared = "published_erase_keys"
    con.execute(f"CREATE OR REPLACE TABLE {shared} AS SELECT key_sha256, key_kind FROM {keys}")
    kinds = ledger_kinds(con, shared)
    cursors: queue.SimpleQueue = queue.SimpleQueue()
    opened = [con.cursor() for _ in range(max(1, settings.duckdb_threads))]
    for cursor in opened:
        cursors.put(cursor)

    def rewrite(path: Path) -> int:
        cursor = cursors.get()
        try:
            return (_rewrite_csv if path.suffix == ".csv" else _rewrite_plain_parquet)(
                cursor, path, shared, kinds)
        finally:
            cursors.put(cursor)

    try:
        with ThreadPoolExecutor(len(opened)) as pool:
            removed = list(pool.map(rewrite, [path for _, path in files]))
    finally:
        for cursor in opened:
            cursor.close()
        con.execute(f"DROP TABLE IF EXISTS {shared}")
    out = []
    for folder in folders:
        changed = [{"path": _rel(settings, path), "file": path.relative_to(folder).as_posix(),
                    "rows_removed": n}
                   for (home, path), n in zip(files, removed, strict=True) if home == folder and n]
        if changed:
            update_manifest(folder, changed, ds)
        out += [{"path": c["path"], "rows_removed": c["rows_removed"]} for c in changed]
    return out


def update_manifest(folder: Path, changed: list[dict], ds: str, note: str = "erasure") -> None:
    """Refresh the manifest entries of rewritten files and append a redaction record."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        return
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    removed = {c["file"]: c["rows_removed"] for c in changed}

    def refresh(entry: dict) -> None:
        path = folder / entry["path"]
        entry["sha256"] = _sha256(path)
        if "bytes" in entry:
            entry["bytes"] = path.stat().st_size

    # Export manifests: per segment {files: {kind: {path, sha256, bytes}}, rows, ...}.
    for segment in manifest.get("segments", []):
        for kind, entry in (segment.get("files") or {}).items():
            if isinstance(entry, dict) and entry.get("path") in removed:
                refresh(entry)
                if kind == "parquet" and "rows" in segment:
                    segment["rows"] = max(0, int(segment["rows"]) - removed[entry["path"]])
    for top in ("erasures", "consent"):
        block = manifest.get(top) or {}
        entry = block.get("file") if isinstance(block, dict) else None
        if isinstance(entry, dict) and entry.get("path") in removed:
            refresh(entry)
            if top == "consent" and "rows" in block:
                block["rows"] = max(0, int(block["rows"]) - removed[entry["path"]])
    # File-drop manifests: {files: {relative path: {sha256, rows}}}.
    files = manifest.get("files")
    if isinstance(files, dict):
        for rel, entry in files.items():
            if rel in removed and isinstance(entry, dict):
                entry["sha256"] = _sha256(folder / rel)
                if "rows" in entry:
                    entry["rows"] = max(0, int(entry["rows"]) - removed[rel])
    manifest.setdefault("redactions", []).append({
        "ds": ds, "reason": note,
        "files": {rel: {"rows_removed": n} for rel, n in sorted(removed.items())}})
    tmp = manifest_path.with_name(f".manifest.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n",
                   encoding="utf-8")
    os.replace(tmp, manifest_path)


def warehouse(settings: Settings, keys_parquet: Path, ds: date) -> list[dict]:
    """Delete erased persons' rows from every table of the warehouse, then rewrite the file
    so that freed blocks holding old values are gone too.

    `keys_parquet` holds the keys to erase (the warehouse connection cannot see the
    caller's temp tables). An event goes from every table once it goes from the staged
    events: it can match there by a column the tables built from it do not carry (an erased
    address's hash on a cookie identity did not join to its person), and left in
    `customer_events` it could not follow its cookie when identity moved it (a 1M night after
    an erasure stopped there). Its person, not erased, is listed for the next night's event
    marts (erased_events.py).

    The copy is owed from the first night that deletes anything and made on the first night
    `erasure_compaction_days` after that (`compact_if_due`): the deleted rows are gone from
    every query at once, their old bytes from the file within those days. A marker file beside
    the warehouse (`compaction_marker`), written before the commit and removed by the copy,
    holds the night the copy has been owed since, so an interrupted run or a later night makes
    it. The deletes are one transaction; on a night the copy is due it commits only when the
    disk can hold the copy (DiskSpaceError otherwise, nothing deleted). A night whose keys
    match no row needs no room."""
    if not settings.warehouse_path.exists():
        return []
    changed = []
    owed = compaction_marker(settings.warehouse_path)
    con = encryption.connect_warehouse(settings, read_only=False)
    try:
        encryption.configure(con, settings)
        con.execute("BEGIN TRANSACTION")
        con.execute(f"CREATE TEMP TABLE wh_keys AS SELECT * FROM {read_parquet_sql(settings, keys_parquet)}")
        kinds = ledger_kinds(con, "wh_keys")
        con.execute("CREATE TEMP TABLE erased_event_ids (event_id VARCHAR)")
        con.execute(erased_events.DDL)
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('main', 'pipeline_state') AND table_type = 'BASE TABLE' "
            "AND table_catalog = current_database() "
            # the staged events first (the others follow them), the list of persons last
            f"ORDER BY table_name <> '{erased_events.STAGED}', table_schema = 'pipeline_state', table_name"
        ).fetchall()
        staged_removed = 0
        for schema, table in tables:
            relation = f'{schema}."{table}"'
            staged = (schema, table) == ("main", erased_events.STAGED)
            columns = relation_columns(con, relation)
            condition = erased_condition(columns, ledger="wh_keys", source=relation, kinds=kinds)
            if staged_removed and "event_id" in columns:
                condition = (f"({condition or 'false'}) OR event_id IN "
                             "(SELECT event_id FROM erased_event_ids)")
            if condition is None:
                continue
            if staged:
                removed = staged_removed = _delete_staged_events(con, relation, condition)
            elif {"event_id", "unified_id"} <= set(columns):
                # their persons, but erased ones, are listed for the next night
                removed = erased_events.delete_listing_persons(
                    con, relation, condition, ds,
                    erased_condition(["unified_id"], ledger="wh_keys", source="deleted_rows"))
            else:
                removed = con.execute(f"DELETE FROM {relation} WHERE {condition}").fetchone()[0]
            if removed:
                changed.append({"path": f"{_rel(settings, settings.warehouse_path)}#{table}",
                                "rows_removed": removed})
        if changed:
            if compaction_due_on(settings, owed_since(settings) or ds) <= ds:
                require_copy_space(con, con.execute("SELECT current_database()").fetchone()[0],
                                   settings.warehouse_path, "erase", after=ERASE_PENDING)
            if not owed.exists():
                owed.write_text(ds.isoformat() + "\n")
        con.execute("COMMIT")
    finally:
        con.close()  # without a COMMIT (an error above) the deletes roll back
    return changed


def owed_since(settings: Settings) -> date | None:
    """The night since which the warehouse owes its copy (None: it owes none). A marker
    without a readable date (written before the copy could wait) is owed since ever."""
    marker = compaction_marker(settings.warehouse_path)
    if not marker.exists():
        return None
    try:
        return date.fromisoformat(marker.read_text().strip())
    except ValueError:
        return date.min


def compaction_due_on(settings: Settings, since: date) -> date:
    return date.fromordinal(min(since.toordinal() + settings.erasure_compaction_days,
                                date.max.toordinal()))


def compact_if_due(settings: Settings, ds: date) -> dict:
    """Copy the warehouse when the copy it owes is due by `ds`; what it owes, either way."""
    since = owed_since(settings)
    if since is None:
        return {"owed": False}
    due = compaction_due_on(settings, since)
    state = {"owed": True, "owed_since": None if since == date.min else since.isoformat(),
             "due_on": None if since == date.min else due.isoformat(), "copied": due <= ds}
    if due <= ds:
        compact_warehouse(settings)  # removes the marker
        state["owed"] = False
    return state


def compaction_marker(path: Path) -> Path:
    """The file saying that the database at `path` holds deleted values in its blocks until
    it is copied (`replace_with_copy` removes it: any whole copy, a rekey's too, settles it)."""
    return path.with_name(f".{path.name}.compaction-owed")


def _delete_staged_events(con: duckdb.DuckDBPyConnection, relation: str, condition: str) -> int:
    """Delete the matching staged events, keeping their ids in `erased_event_ids`."""
    deleted = con.execute(f"DELETE FROM {relation} WHERE {condition} RETURNING event_id").fetchdf()
    con.register("deleted_rows", deleted)
    try:
        con.execute("INSERT INTO erased_event_ids SELECT event_id FROM deleted_rows")
    finally:
        con.unregister("deleted_rows")
    return len(deleted)


def compact_warehouse(settings: Settings) -> None:
    """Copy the warehouse into a fresh file and swap it in: deleted rows and dropped tables
    leave their old bytes in free blocks until overwritten; a copy holds live data only."""
    path = settings.warehouse_path
    alias = encryption.warehouse_alias(settings)
    key_option = encryption.attach_options(settings, read_only=False)
    con = copy_connection(settings)
    try:
        encryption.configure(con, settings)
        con.execute(f'ATTACH {literal(path)} AS "{alias}"{key_option}')
    except BaseException:
        con.close()
        raise
    replace_with_copy(con, path, alias, key_option, "compact")


def copy_connection(settings: Settings) -> duckdb.DuckDBPyConnection:
    """An in-memory connection to copy the whole warehouse with (`replace_with_copy`), held
    to the product's memory limit and spilling beside the warehouse: without a limit DuckDB
    keeps up to 80% of the machine's memory as buffers (the 1M harness's erase step, which
    compacts a 20 GB warehouse, peaked at 20.7 GiB)."""
    return duckdb.connect(config=settings.duckdb_config(settings.warehouse_spill_dir))


# The copy holds the live blocks; DuckDB's own bookkeeping and spilling want a little more.
COPY_SPACE_MARGIN = 1.1
# What the erase step's DiskSpaceError adds: nothing is lost by stopping there.
ERASE_PENDING = (" Tonight's erasure requests stay pending in the ledger (exports already leave "
                 "the requesters out) and are applied when the step runs again.")


def require_copy_space(con: duckdb.DuckDBPyConnection, alias: str, path: Path, purpose: str,
                       after: str = "") -> None:
    """Raise DiskSpaceError, before anything is written, when the disk holding `path` (the
    database attached on `con` as `alias`) cannot hold a copy of its live data: a copy that
    filled the disk would fail after minutes of work (a 3M warehouse is ≈ 30 GB)."""
    live = con.execute("SELECT used_blocks * block_size FROM pragma_database_size() "
                       "WHERE database_name = ?", [alias]).fetchone()[0]
    need, free = int(live * COPY_SPACE_MARGIN), shutil.disk_usage(path.parent).free
    if free < need:
        raise DiskSpaceError(
            f"{purpose}: copying the warehouse ({gib(live)} of live data) needs about "
            f"{gib(need)} free on the disk of {path.parent}, which has {gib(free)}; free some "
            f"space or move the home to a larger disk, then run it again.{after}")


def replace_with_copy(con: duckdb.DuckDBPyConnection, path: Path, alias: str,
                      fresh_options: str, purpose: str) -> None:
    """Copy the database file `path`, attached on `con` as `alias`, into a fresh file
    (attached with `fresh_options`, e.g. its encryption key) and atomically swap it in.

    Closes `con`. The copy is made under the warehouse's own catalog name so the views' SQL
    binds as it will afterwards; on any error the fresh file is removed and `path` is left
    as it was. Used to compact (redaction) and to re-encrypt (rekey) the warehouse."""
    fresh = path.with_name(f".{path.name}.{purpose}-{uuid.uuid4().hex[:8]}")
    try:
        require_copy_space(con, alias, path, purpose)
        con.execute(f"ATTACH {literal(fresh)} AS fresh{fresh_options}")
        con.execute(f'COPY FROM DATABASE "{alias}" TO fresh')
        con.execute("DETACH fresh")
        con.execute(f'DETACH "{alias}"')
    except BaseException:
        con.close()
        fresh.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(fresh, path)
    Path(f"{path}.wal").unlink(missing_ok=True)
    compaction_marker(path).unlink(missing_ok=True)

"""`extract_source`: one source's landing files for one `ds` -> lake, quarantine, load log."""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from personalization.config import SOURCES, Settings
from personalization.exceptions import ExtractError, SourceMissingError
from personalization.extract.contracts import FILES, FileSpec, TableSpec, lake_columns
from personalization.extract.csv_file import extract_csv
from personalization.extract.jsonl_file import extract_events, extract_orders
from personalization.extract.lines import drop_staged_lines
from personalization.extract.partition import (
    STAGING_DIR,
    clean_stale_staging,
    partition_dir,
    write_partition,
)
from personalization.observability import StepReport, log_event
from personalization.privacy import encryption
from personalization.sql import literal

logger = logging.getLogger(__name__)

QUARANTINE_COLUMNS = [("source_file", "VARCHAR"), ("line_number", "BIGINT"), ("raw", "VARCHAR"),
                      ("reason", "VARCHAR")]
LOAD_LOG_COLUMNS = [
    ("source", "VARCHAR"), ("table_name", "VARCHAR"), ("ds", "DATE"), ("source_file", "VARCHAR"),
    ("rows_in", "BIGINT"), ("rows_loaded", "BIGINT"), ("rows_quarantined", "BIGINT"),
    ("status", "VARCHAR"), ("loaded_at", "TIMESTAMP"), ("seconds", "DOUBLE"),
]


def extract_source(source: str, ds: date, settings: Settings) -> list[StepReport]:
    """Extract every file of `source` delivered for `ds` into the lake.

    Reads `<landing>/<source>/<ds>/`, writes `<lake>/raw/<source>/<table>/ds=<ds>/`, the
    rejected lines to `<lake>/quarantine/...` and one load-log row per table to
    `<lake>/load_log/...`; each partition is replaced atomically, so a rerun replaces
    the date's data and never appends.

    Args:
        source: one of `crm`, `shop`, `pixel`.
        ds: logical date (the delivery folder; "future" means after its end + clock skew).
        settings: paths, clock skew, required sources, DuckDB limits.

    Returns:
        One StepReport per lake table, step `extract_<source>.<table>`; status `ok`,
        `empty` (file delivered with no rows) or `skipped` (optional source not delivered).

    Raises:
        SourceMissingError: a file of a required source was not delivered.
        ExtractError: a file is unreadable or breaks the contract as a whole (header).
    """
    if source not in FILES:
        raise ExtractError(f"unknown source {source!r}; known: {list(SOURCES)}")
    folder = settings.landing_dir / source / ds.isoformat()
    missing = [f.file_name for f in FILES[source]
               if f.root == "landing" and not (folder / f.file_name).is_file()]
    if missing and source in settings.required_sources:
        raise SourceMissingError(
            f"source {source!r} did not deliver {', '.join(missing)} for ds {ds} "
            f"(looked in {folder})")
    reports: list[StepReport] = []
    for spec in FILES[source]:
        path = _file_path(spec, ds, settings)
        if not path.is_file():
            level = logging.WARNING if spec.root == "landing" else logging.INFO
            log_event(logger, "extract_source_missing", level, source=source,
                      file=spec.file_name, ds=str(ds), folder=str(path.parent), required=False)
            # "optional": absent by design (no intake in use), not worth a warning
            reports += [StepReport(step=_step(t), ds=str(ds), status="skipped",
                                   details={"missing_file": str(path),
                                            "optional": spec.root == "intake"})
                        for t in spec.tables]
            continue
        reports += _extract_file(spec, path, ds, settings)
    return reports


def _file_path(spec: FileSpec, ds: date, settings: Settings) -> Path:
    root = settings.intake_dir if spec.root == "intake" else settings.landing_dir
    return root / spec.source / ds.isoformat() / spec.file_name


def _step(table: TableSpec) -> str:
    return f"extract_{table.source}.{table.name}"


def _connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    # In memory, with a temp directory: DuckDB spills in-memory tables there past
    # memory_limit, so a years-long backfill file still fits. (A database file was measured
    # 6x slower: every batch insert wrote the WAL.)
    con = duckdb.connect(":memory:", config=settings.duckdb_config(
        settings.lake_dir / STAGING_DIR / "duckdb_spill"))
    con.execute("SET TimeZone = 'UTC'")
    encryption.configure(con, settings)  # the lake key, when encryption at rest is on
    return con


def _extract_file(spec: FileSpec, path: Path, ds: date, settings: Settings) -> list[StepReport]:
    start = time.perf_counter()
    source_file = f"{spec.root}:{spec.source}/{ds.isoformat()}/{spec.file_name}" \
        if spec.root != "landing" else f"{spec.source}/{ds.isoformat()}/{spec.file_name}"
    skew = settings.clock_skew_minutes
    lake = settings.lake_dir
    prefix = f"{spec.source}-{spec.file_name}-{ds.isoformat()}-"
    clean_stale_staging(lake, prefix)
    con = _connect(settings)
    try:
        presorted = False
        if spec.file_name == "orders.jsonl":
            rows_in = extract_orders(con, path, spec.tables[0], spec.tables[1], ds, skew, source_file)
        elif spec.format == "jsonl":
            presorted = True  # extract_events stages its rows in line order
            n = extract_events(con, path, spec.tables[0], ds, skew, source_file)
            rows_in = None if n is None else {spec.tables[0].name: n}
        else:
            n = extract_csv(con, path, spec.tables[0], ds, skew, source_file)
            rows_in = None if n is None else {spec.tables[0].name: n}
        empty = rows_in is None
        if empty:
            log_event(logger, "extract_empty_file", logging.WARNING, file=source_file, ds=str(ds))
            for table in spec.tables:
                _create_empty(con, table)
        seconds = round(time.perf_counter() - start, 3)
        reports = []
        for table in spec.tables:
            reports.append(_publish(con, table, ds, source_file, 0 if empty else rows_in[table.name],
                                    "empty" if empty else "loaded", seconds, lake, prefix,
                                    presorted and not empty))
        return reports
    except duckdb.Error as e:
        raise ExtractError(f"extract of {path} for ds {ds} failed: {e}") from e
    finally:
        drop_staged_lines(con)
        con.close()


def _create_empty(con: duckdb.DuckDBPyConnection, table: TableSpec) -> None:
    cols = ", ".join(f"{n} {t}" for n, t in lake_columns(table))
    qcols = ", ".join(f"{n} {t}" for n, t in QUARANTINE_COLUMNS)
    con.execute(f"CREATE OR REPLACE TABLE out_{table.name} ({cols})")
    con.execute(f"CREATE OR REPLACE TABLE q_{table.name} ({qcols})")


def _copy(con: duckdb.DuckDBPyConnection, query: str, params: list | None = None):
    def write(path: Path) -> None:
        # Sorted (events: in line order), so a rerun on the same file writes the same rows.
        con.execute(f"COPY ({query}) TO {literal(path)} (FORMAT parquet, COMPRESSION zstd"
                    f"{encryption.copy_options(con)})",
                    params or [])
    return write


def _publish(con: duckdb.DuckDBPyConnection, table: TableSpec, ds: date, source_file: str,
             rows_in: int, status: str, seconds: float, lake: Path, prefix: str,
             presorted: bool = False) -> StepReport:
    """Write raw, quarantine and (last, as the commit record) the load log of one table."""
    cols = lake_columns(table)
    select = ", ".join(f"CAST({n} AS {t}) AS {n}" for n, t in cols)
    order = "_line_number, line_number" if table.name == "order_items" else "_line_number"
    # Events are staged in line order already (jsonl_file.extract_events): sorting the largest
    # table of all again would spill it whole. A rerun writes the same rows in the same order;
    # only where the parallel writer cuts row groups may differ.
    in_order = "" if presorted else f" ORDER BY {order}"
    qselect = ", ".join(f"CAST({n} AS {t}) AS {n}" for n, t in QUARANTINE_COLUMNS)
    loaded = con.execute(f"SELECT count(*) FROM out_{table.name}").fetchall()[0][0]
    quarantined = con.execute(f"SELECT count(*) FROM q_{table.name}").fetchall()[0][0]
    if loaded + quarantined != rows_in:  # a bug in the checks, never the data's fault
        raise ExtractError(f"{source_file} -> {table.name}: rows_in {rows_in} != loaded {loaded} "
                           f"+ quarantined {quarantined}")
    reasons = dict(con.execute(f"""
        SELECT split_part(r, ':', 1) AS code, count(*) FROM q_{table.name},
               unnest(string_split(reason, '; ')) AS t(r) GROUP BY code ORDER BY code
    """).fetchall())
    src, name = table.source, table.name
    write_partition(partition_dir(lake, "raw", src, name, ds), lake, prefix,
                    _copy(con, f"SELECT {select} FROM out_{name}{in_order}"))
    write_partition(partition_dir(lake, "quarantine", src, name, ds), lake, prefix,
                    _copy(con, f"SELECT {qselect} FROM q_{name} ORDER BY line_number, raw"))
    log_select = ", ".join(f"CAST(? AS {t}) AS {n}" for n, t in LOAD_LOG_COLUMNS)
    # loaded_at is audit metadata (when the load ran), not business logic: wall clock is right.
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    write_partition(partition_dir(lake, "load_log", src, name, ds), lake, prefix,
                    _copy(con, f"SELECT {log_select}",
                          [src, name, ds, source_file, rows_in, loaded, quarantined, status,
                           loaded_at, seconds]))
    level = logging.WARNING if quarantined else logging.INFO
    log_event(logger, "extract_table_done", level, source=src, table=name, ds=str(ds),
              file=source_file, rows_in=rows_in, rows_loaded=loaded,
              rows_quarantined=quarantined, status=status, reasons=reasons, seconds=seconds)
    return StepReport(step=_step(table), ds=str(ds), rows_in=rows_in, rows_out=loaded,
                      rows_quarantined=quarantined, seconds=seconds,
                      status="ok" if status == "loaded" else status,
                      details={"source_file": source_file, "quarantine_reasons": reasons,
                               "path": str(partition_dir(lake, "raw", src, name, ds))})

"""Read a landing file into DuckDB as numbered text lines.

`iter_line_batches` reads the file in chunks (ISA-L inflates gzip) and splits each in Arrow,
with no Python object per line; `streamed_lines` streams those batches into one DuckDB
statement, which checks the lines on both cores while the next chunk is read. The exact line
number and the original text of every line, which quarantine needs, are kept, and invalid
UTF-8, CRLF, mixed line endings, a BOM and blank lines survive. `stage` streams a result too
large to hold to a compressed file. The privacy redaction reads landing files with
`iter_line_batches` too, so both see the same lines.

(Until 2026-12-05 DuckDB's CSV reader split the lines into a staged file, with the lines it
rejected read back by number: as fast for plain files, slower for gzip, which it inflates on
one thread, and a second way to keep equal to this one; docs/performance.md.)
"""

from __future__ import annotations

import os
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from isal import igzip, isal_zlib

from personalization.exceptions import ExtractError
from personalization.privacy import encryption
from personalization.sql import literal

CHUNK_BYTES = 32 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"
LINE_SCHEMA = pa.schema([("line_number", pa.int64()), ("raw", pa.large_string())])
# What a truncated or corrupt file raises while it is read.
READ_ERRORS = (OSError, EOFError, zlib.error, isal_zlib.error)
REPLACEMENT_CHAR = "\ufffd"


def structural_reason(*checks: tuple[str, str]) -> str:
    """SQL for why a line (`raw`) cannot be read as a record: invalid bytes first (decoded as
    U+FFFD), then each `(condition, reason)` in turn; NULL when none holds."""
    whens = " ".join(f"WHEN {condition} THEN '{reason}'" for condition, reason in checks)
    return f"CASE WHEN contains(raw, '{REPLACEMENT_CHAR}') THEN 'invalid_encoding' {whens} END"


def is_gzip(path: Path) -> bool:
    """Decided by content, not by suffix: a plain file named .gz (or the reverse) still loads."""
    with path.open("rb") as f:
        return f.read(2) == GZIP_MAGIC


def open_landing(path: Path):
    """The file's bytes, decompressed when it is gzip (`is_gzip`; ISA-L inflates about twice
    as fast as zlib, the same bytes and the same errors for a truncated or corrupt file)."""
    return igzip.open(path, "rb") if is_gzip(path) else path.open("rb")


def iter_line_batches(path: Path, chunk_bytes: int | None = None) -> Iterator[pa.RecordBatch]:
    """Yield Arrow batches `(line_number BIGINT, raw VARCHAR)`, 1 = first physical line.

    Invalid UTF-8 is replaced by U+FFFD (the validators quarantine such lines); a trailing
    "\\r" and a leading BOM are removed; a missing final newline is fine.

    Raises:
        ExtractError: the file cannot be read or its gzip stream is corrupt or truncated.
    """
    next_line = 1
    rest = b""
    try:
        with open_landing(path) as f:
            while True:
                chunk = f.read(chunk_bytes or CHUNK_BYTES)
                if not chunk:
                    break
                data = rest + chunk
                cut = data.rfind(b"\n")
                if cut < 0:
                    rest = data
                    continue
                rest = data[cut + 1:]
                batch = _batch(data[:cut], next_line)
                next_line += batch.num_rows
                yield batch
            if rest:
                yield _batch(rest, next_line)
    except READ_ERRORS as e:
        raise ExtractError(f"cannot read landing file {path}: {e}") from e


def _batch(data: bytes, first_number: int) -> pa.RecordBatch:
    """Numbered lines of `data` (whole lines, the last without its newline), split in Arrow."""
    if first_number == 1 and data.startswith(BOM):
        data = data[len(BOM):]
    # CRLF endings: strip the "\r" here, in C, once; in SQL every use of `raw` would
    # recompute an rtrim() (the CTE is inlined), which cost most of the extract time.
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
        if data.endswith(b"\r"):
            data = data[:-1]
    try:
        lines = _split(data).cast(pa.large_string())  # checks the UTF-8
    except pa.ArrowInvalid:  # invalid bytes become U+FFFD (quarantined as invalid_encoding)
        lines = _split(data.decode("utf-8", errors="replace").encode()).cast(pa.large_string())
    numbers = pa.array(np.arange(first_number, first_number + len(lines), dtype=np.int64))
    return pa.record_batch([numbers, lines], schema=LINE_SCHEMA)


def _split(data: bytes) -> pa.Array:
    return pc.split_pattern(pa.array([data], pa.large_binary()), b"\n").flatten()


@contextmanager
def streamed_lines(con: duckdb.DuckDBPyConnection, path: Path, view: str, select_sql: str):
    """Within the block, view `view` = `select_sql` over `batch_lines(line_number, raw)`, the
    numbered lines of `path` streamed from `iter_line_batches`: one statement may read it,
    once. Rows come in line order (Arrow scans keep their batch order); a file that cannot be
    read raises `ExtractError` from the statement.

    Nothing is staged, and while DuckDB checks one chunk on one core the next is inflated and
    split on the other (a gzip file is one stream, which DuckDB's own reader also inflates on
    one thread). The 1M backfill's events (51M lines): 248 s / 433 CPU s split by DuckDB's
    reader into a staged file, 152 s / 278 CPU s streamed.
    """
    failed: list[ExtractError] = []

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from iter_line_batches(path)
        except ExtractError as e:
            failed.append(e)
            raise

    stream = f"_stream_{view}"
    con.register(stream, pa.RecordBatchReader.from_batches(LINE_SCHEMA, batches()))
    con.execute(f"CREATE OR REPLACE VIEW {view} AS WITH batch_lines AS "
                f"(SELECT line_number, raw FROM {stream}) {select_sql}")
    try:
        yield
    except duckdb.Error:
        if failed:
            raise failed[0] from None
        raise
    finally:
        con.execute(f"DROP VIEW IF EXISTS {view}")
        con.unregister(stream)


def first_line(path: Path) -> str | None:
    """The first line of `path` as `iter_line_batches` reads it; None for an empty file."""
    for batch in iter_line_batches(path, chunk_bytes=64 * 1024):
        return batch.column(1)[0].as_py()
    return None


def stage(con: duckdb.DuckDBPyConnection, name: str, query: str) -> str:
    """Stream `query` to a compressed Parquet file in the staging area and return the SQL that
    reads it back, in the order written (rows in file order stay so).

    For results too large to hold: a DuckDB table past memory_limit spills uncompressed (a 3M
    people backfill of 154M events spilled past 30 GB and filled the disk); the file is a
    fraction of that. Removed by `drop_staged_lines`."""
    path = _staged_file(con, name)
    con.execute(f"COPY ({query}) TO {literal(str(path))} "
                f"(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1{encryption.copy_options(con)})")
    return f"read_parquet({literal(str(path))}{encryption.read_options(con)})"


def drop_staged_lines(con: duckdb.DuckDBPyConnection) -> None:
    """Remove every file `stage` wrote for `con` (after an error, nothing is left)."""
    pattern = _staged_file(con, "*")
    for staged in pattern.parent.glob(pattern.name):
        staged.unlink(missing_ok=True)


def _staged_file(con: duckdb.DuckDBPyConnection, table: str) -> Path:
    """Where `stage` writes: DuckDB's temp directory (the lake's staging area in the
    extract), one file per connection and name."""
    temp = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
    folder = Path(temp) if temp and Path(temp).is_absolute() else Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"lines-{os.getpid()}-{id(con)}-{table}.parquet"

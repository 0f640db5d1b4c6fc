"""Load a landing file into DuckDB as numbered text lines.

Two ways, the same lines: `load_lines` lets DuckDB's CSV reader split the file (one VARCHAR
column, no quoting, a delimiter text never holds) and stages the lines as a file that the
checks can read several times; `streamed_lines` streams `iter_line_batches` (chunks split in
Arrow, no Python object per line) into one statement, for the largest files, which are read
once. The exact line number and the original text of every line, which quarantine needs, are
kept, and invalid UTF-8, CRLF, a BOM and blank lines survive. `iter_line_batches` also reads
what DuckDB cannot split, and the landing files the privacy redaction checks.
"""

from __future__ import annotations

import bisect
import logging
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
from personalization.observability import log_event
from personalization.privacy import encryption
from personalization.sql import literal

logger = logging.getLogger(__name__)

CHUNK_BYTES = 32 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"
LINE_SCHEMA = pa.schema([("line_number", pa.int64()), ("raw", pa.large_string())])
# What a truncated or corrupt file raises while it is read.
READ_ERRORS = (OSError, EOFError, zlib.error, isal_zlib.error)
REPLACEMENT_CHAR = "\ufffd"
# The "delimiter" given to DuckDB's CSV reader when it splits lines: control characters that
# text never holds (JSON forbids them unescaped). A line that does hold them is rejected by
# the reader and read back exactly (see `load_lines`).
NO_DELIM = "\x01\x02\x03\x04"
MAX_LINE_BYTES = 8 * 1024 * 1024  # a longer line is read back exactly, not lost


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


def _batch(data: bytes, first_line: int) -> pa.RecordBatch:
    """Numbered lines of `data` (whole lines, the last without its newline), split in Arrow."""
    if first_line == 1 and data.startswith(BOM):
        data = data[len(BOM):]
    # CRLF endings: strip the "\r" here, in C, once; in SQL every use of `raw` would
    # recompute an rtrim() (the CTE is inlined), which cost most of the extract time.
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
        if data.endswith(b"\r"):
            data = data[:-1]
    pieces = pc.split_pattern(pa.array([data], pa.large_binary()), b"\n").flatten()
    try:
        lines = pieces.cast(pa.large_string())  # checks the UTF-8
    except pa.ArrowInvalid:  # invalid bytes become U+FFFD (quarantined as invalid_encoding)
        lines = pa.array(data.decode("utf-8", errors="replace").split("\n"), pa.large_string())
    numbers = pa.array(np.arange(first_line, first_line + len(lines), dtype=np.int64))
    return pa.record_batch([numbers, lines], schema=LINE_SCHEMA)


@contextmanager
def streamed_lines(con: duckdb.DuckDBPyConnection, path: Path, view: str, select_sql: str):
    """Within the block, view `view` = `select_sql` over the numbered lines of `path`
    (`batch_lines(line_number, raw)` as in `load_lines`), streamed from `iter_line_batches`:
    one statement may read it, once.

    For the largest files (a backfill's events): nothing is staged, and while DuckDB checks
    one chunk on one core the next is inflated and split on the other (gzip is one stream:
    DuckDB's reader inflates it on one thread too). The 1M backfill's events (51M lines):
    248 s / 433 CPU s with `load_lines`, 152 s / 278 CPU s streamed. Rows come in line order
    (Arrow scans keep their batch order). A file that cannot be read raises `ExtractError`
    from the statement.
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


def load_lines(con: duckdb.DuckDBPyConnection, path: Path, table: str, select_sql: str) -> int:
    """Make view `table` = `select_sql` over the numbered lines of `path`; return the line count.

    The file is split into lines by DuckDB's CSV reader (one VARCHAR column, no quote, a
    delimiter that does not occur in text), in C and in parallel for plain files; the lines are
    kept in table `_lines_<table>` in file order, so a line's number is its position. Lines
    the reader rejects (invalid UTF-8, longer than MAX_LINE_BYTES, holding the delimiter) are
    read back byte-exact from the file by their line numbers and decoded as before (invalid
    bytes -> U+FFFD, so the validators quarantine them as `invalid_encoding`). A file the reader
    cannot split at all (mixed CRLF/LF line endings, a lone CR) goes through the Python chunk
    reader `iter_line_batches` instead, with the same result.

    Args:
        con: DuckDB connection.
        path: landing file (plain or gzip, decided by content).
        table: name of the view to create (replaced); drop it with `drop_lines`.
        select_sql: a SELECT over `batch_lines(line_number, raw)` (trailing "\r" already
            stripped, a BOM removed, blank lines as '').
    """
    lines, rejects = f"_lines_{table}", f"_rejects_{table}"
    drop_lines(con, table)
    staged = _staged_file(con, table)
    try:
        # Streamed to a compressed Parquet file, not held in a table: a backfill's text is
        # many GB and a table past memory_limit spills uncompressed (30 GB for 48M lines).
        con.execute(f"COPY (SELECT coalesce(raw, '') AS raw FROM {_read_csv_sql(path, rejects)}) "
                    f"TO {literal(str(staged))} (FORMAT parquet, COMPRESSION zstd"
                    f"{encryption.copy_options(con)})")
        rejected = sorted(r[0] for r in con.execute(f"SELECT DISTINCT line FROM {rejects}").fetchall())
    except duckdb.Error as e:
        log_event(logger, "extract_line_reader_fallback", logging.WARNING, file=str(path),
                  error=str(e).splitlines()[0][:200])
        staged.unlink(missing_ok=True)
        return _load_lines_python(con, path, table, select_sql)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {rejects}")
        con.execute(f"DROP TABLE IF EXISTS {rejects}_scan")
    # file_row_number is the position in the file as written, i.e. in the landing file's order.
    con.execute(f"CREATE VIEW {lines}_staged AS SELECT file_row_number AS pos, raw FROM "
                f"read_parquet({literal(str(staged))}, file_row_number = true"
                f"{encryption.read_options(con)})")
    good = con.execute(f"SELECT count(*) FROM {lines}_staged").fetchall()[0][0]
    if not rejected:
        numbered = f"SELECT pos + 1 AS line_number, raw FROM {lines}_staged"
    else:
        texts = exact_lines(path, set(rejected))
        missing = [n for n in rejected if n not in texts]
        if missing:  # the reader and the file disagree: never guess, never lose a line
            raise ExtractError(f"{path}: rejected line(s) {missing[:5]} not found in the file")
        con.register("_rejected_batch", pa.table({
            "line_number": pa.array(rejected, pa.int64()),
            "raw": pa.array([texts[n] for n in rejected], pa.string())}))
        con.execute(f"CREATE OR REPLACE TABLE {lines}_rejected AS SELECT * FROM _rejected_batch")
        con.unregister("_rejected_batch")
        # The i-th line the reader kept comes after the k-th rejected line iff
        # line_k - k (kept lines before it) < i: its number is i + (the largest such k).
        con.execute(f"""CREATE OR REPLACE TABLE {lines}_skips AS
                        SELECT g, max(k) AS k FROM (
                          SELECT line_number - row_number() OVER (ORDER BY line_number) AS g,
                                 row_number() OVER (ORDER BY line_number) AS k
                          FROM {lines}_rejected) GROUP BY g""")
        numbered = (f"SELECT l.pos + 1 + coalesce(s.k, 0) AS line_number, l.raw FROM {lines}_staged l "
                    f"ASOF LEFT JOIN {lines}_skips s ON l.pos + 1 > s.g "
                    f"UNION ALL SELECT line_number, raw FROM {lines}_rejected")
    con.execute(f"CREATE VIEW {table} AS WITH batch_lines AS ({numbered}) {select_sql}")
    return good + len(rejected)


def stage(con: duckdb.DuckDBPyConnection, name: str, query: str) -> str:
    """Stream `query` to a compressed Parquet file in the staging area and return the SQL that
    reads it back, in the order written (rows in file order stay so).

    For results too large to hold: a DuckDB table past memory_limit spills uncompressed (a 3M
    people backfill of 154M events spilled past 30 GB and filled the disk); the file is a
    fraction of that. Removed with the staged lines (`drop_staged_lines`)."""
    path = _staged_file(con, name)
    con.execute(f"COPY ({query}) TO {literal(str(path))} "
                f"(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1{encryption.copy_options(con)})")
    return f"read_parquet({literal(str(path))}{encryption.read_options(con)})"


def drop_lines(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Drop the view made by `load_lines` and the tables behind it."""
    con.execute(f"DROP VIEW IF EXISTS {table}")
    con.execute(f"DROP VIEW IF EXISTS _lines_{table}_staged")
    for suffix in ("", "_rejected", "_skips"):
        con.execute(f"DROP TABLE IF EXISTS _lines_{table}{suffix}")
    _staged_file(con, table).unlink(missing_ok=True)


def drop_staged_lines(con: duckdb.DuckDBPyConnection) -> None:
    """Remove every file `load_lines` staged for `con` (after an error, nothing is left)."""
    pattern = _staged_file(con, "*")
    for staged in pattern.parent.glob(pattern.name):
        staged.unlink(missing_ok=True)


def _staged_file(con: duckdb.DuckDBPyConnection, table: str) -> Path:
    """Where `load_lines` streams the lines: DuckDB's temp directory (the lake's staging area
    in the extract), one file per connection and view."""
    temp = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
    folder = Path(temp) if temp and Path(temp).is_absolute() else Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"lines-{os.getpid()}-{id(con)}-{table}.parquet"


def _load_lines_python(con: duckdb.DuckDBPyConnection, path: Path, table: str,
                       select_sql: str) -> int:
    """`load_lines` through the Python chunk reader (files DuckDB's reader cannot split)."""
    lines = f"_lines_{table}"
    total = 0
    con.execute(f"CREATE OR REPLACE TABLE {lines} (line_number BIGINT, raw VARCHAR)")
    for batch in iter_line_batches(path):
        con.register("_line_batch", batch)
        con.execute(f"INSERT INTO {lines} SELECT line_number, raw FROM _line_batch")
        con.unregister("_line_batch")
        total += batch.num_rows
    con.execute(f"CREATE VIEW {table} AS WITH batch_lines AS "
                f"(SELECT line_number, raw FROM {lines}) {select_sql}")
    return total


def _compression(path: Path) -> str:
    return "gzip" if is_gzip(path) else "none"


def _read_csv_sql(path: Path, rejects: str) -> str:
    """DuckDB's CSV reader used as a line splitter: one VARCHAR column, no quoting."""
    return (f"read_csv({literal(path)}, columns={{'raw': 'VARCHAR'}}, delim={literal(NO_DELIM)}, "
            f"quote='', escape='', comment='', header=false, auto_detect=false, "
            f"compression='{_compression(path)}', max_line_size={MAX_LINE_BYTES}, "
            f"store_rejects=true, rejects_table='{rejects}', rejects_scan='{rejects}_scan')")


def exact_lines(path: Path, wanted: set[int], chunk_bytes: int = CHUNK_BYTES) -> dict[int, str]:
    """The text of the physical lines `wanted` (1-based), decoded as `iter_line_batches` does.

    Newlines are counted in C (`bytes.count`); only chunks that hold a wanted line are split.
    """
    out: dict[int, str] = {}
    targets = sorted(wanted)
    if not targets:
        return out
    next_line, rest = 1, b""
    try:
        with open_landing(path) as f:
            while next_line <= targets[-1]:
                chunk = f.read(chunk_bytes)
                data = rest + chunk
                if chunk:
                    cut = data.rfind(b"\n")
                    if cut < 0:
                        rest = data
                        continue
                    rest, body = data[cut + 1:], data[:cut]
                    n = body.count(b"\n") + 1
                    i = bisect.bisect_left(targets, next_line)
                    if i == len(targets) or targets[i] >= next_line + n:
                        next_line += n
                        continue
                    pieces = body.split(b"\n")
                else:
                    pieces = [data] if data else []
                for offset, piece in enumerate(pieces):
                    if next_line + offset in wanted:
                        out[next_line + offset] = _decode(piece, next_line + offset == 1)
                next_line += len(pieces)
                if not chunk:
                    break
    except READ_ERRORS as e:
        raise ExtractError(f"cannot read landing file {path}: {e}") from e
    return out


def _decode(line: bytes, first: bool) -> str:
    text = line.decode("utf-8", errors="replace")
    if first and text.startswith("\ufeff"):
        text = text[1:]
    return text[:-1] if text.endswith("\r") else text

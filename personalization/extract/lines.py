"""Load a landing file into DuckDB as numbered text lines.

Files are read in large binary chunks and split on b"\\n" in C; each chunk goes to DuckDB
as one Arrow batch, so no Python code runs per line. Reading lines ourselves (rather than
with DuckDB's CSV reader) keeps the exact line number and the original text of every line,
which quarantine needs, and survives invalid UTF-8, CRLF, a BOM and blank lines.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from personalization.exceptions import ExtractError

logger = logging.getLogger(__name__)

CHUNK_BYTES = 32 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
REPLACEMENT_CHAR = "\ufffd"


def _open(path: Path):
    with path.open("rb") as f:
        magic = f.read(2)
    # Decide by content, not by suffix: a plain file named .gz (or the reverse) still loads.
    return gzip.open(path, "rb") if magic == GZIP_MAGIC else path.open("rb")


def iter_line_batches(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[pa.RecordBatch]:
    """Yield Arrow batches `(line_number BIGINT, raw VARCHAR)`, 1 = first physical line.

    Invalid UTF-8 is replaced by U+FFFD (the validators quarantine such lines); a trailing
    "\\r" and a leading BOM are removed; a missing final newline is fine.

    Raises:
        ExtractError: the file cannot be read or its gzip stream is corrupt or truncated.
    """
    next_line = 1
    rest = b""
    try:
        with _open(path) as f:
            while True:
                chunk = f.read(chunk_bytes)
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
    except (OSError, EOFError, zlib.error) as e:
        raise ExtractError(f"cannot read landing file {path}: {e}") from e


def _batch(data: bytes, first_line: int) -> pa.RecordBatch:
    text = data.decode("utf-8", errors="replace")
    if first_line == 1 and text.startswith("\ufeff"):
        text = text[1:]
    # CRLF endings: strip the "\r" here, in C, once; in SQL every use of `raw` would
    # recompute an rtrim() (the CTE is inlined), which cost most of the extract time.
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if text.endswith("\r"):
            text = text[:-1]
    lines = text.split("\n")
    numbers = pa.array(range(first_line, first_line + len(lines)), pa.int64())
    return pa.record_batch([numbers, pa.array(lines, pa.string())], names=["line_number", "raw"])


def load_lines(con: duckdb.DuckDBPyConnection, path: Path, table: str, select_sql: str) -> int:
    """Stream `path` into `table`, one Arrow batch at a time; return the physical line count.

    Args:
        con: DuckDB connection.
        path: landing file (plain or gzip).
        table: created (replaced) from the first batch's result of `select_sql`.
        select_sql: a SELECT over `batch_lines(line_number, raw)` (trailing "\r" already
            stripped), so that parsing happens while loading and the raw lines are never
            stored twice.
    """
    total = 0
    created = False
    for batch in iter_line_batches(path):
        con.register("_line_batch", batch)
        query = f"WITH batch_lines AS (SELECT line_number, raw FROM _line_batch) {select_sql}"
        if created:
            con.execute(f"INSERT INTO {table} {query}")
        else:
            con.execute(f"CREATE OR REPLACE TABLE {table} AS {query}")
            created = True
        con.unregister("_line_batch")
        total += batch.num_rows
    if not created:  # zero bytes: the same shape, no rows
        con.register("_line_batch", pa.table({"line_number": pa.array([], pa.int64()),
                                              "raw": pa.array([], pa.string())}))
        con.execute(f"CREATE OR REPLACE TABLE {table} AS WITH batch_lines AS "
                    f"(SELECT * FROM _line_batch) {select_sql}")
        con.unregister("_line_batch")
    return total

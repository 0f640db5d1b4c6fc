"""Write landing files, splicing a few raw (malformed) lines in between.

CSV files are written by DuckDB's COPY (quoting, header). JSON-lines files get their lines
from `render` (Arrow string kernels) in chunks; each chunk is rendered *and* compressed on a
shared pool of worker threads while the caller goes on (simulating the next day), and the
chunks are written in order. A gzip file is one gzip member whose deflate stream is the
chunks' independently compressed pieces, each ended with a sync flush (what pigz does), so
chunks compress in parallel and the bytes depend only on the chunking, never on thread
timing. To put malformed lines in the middle of a file, the raw lines are spliced in at
random row positions. A file can be written in several calls (the backfill day's pixel
file, one simulated day at a time) and appears atomically when closed.
"""

from __future__ import annotations

import os
import shutil
import struct
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from personalization.sql import literal

try:  # ISA-L's deflate is ~4x faster than zlib's at a better ratio than zlib level 1
    from isal import isal_zlib as _zlib

    _LEVEL = 1
except ImportError:  # pragma: no cover - isal is a pinned dependency; zlib is the fallback
    import zlib as _zlib

    _LEVEL = 1

CHUNK_ROWS = 250_000  # rows rendered at a time: bounds memory and Arrow's 2 GiB string limit
MIN_CHUNK_ROWS = 50_000  # smaller files are not split further for the render threads
RENDER_THREADS = 2  # chunks rendered and compressed concurrently (the machine's cores)
MAX_AHEAD = 2 * RENDER_THREADS  # chunks of one file in flight before write_lines waits
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"  # deflate, no name, mtime 0, unix
_FINAL_BLOCK = b"\x03\x00"  # an empty final deflate block
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _render_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=RENDER_THREADS, thread_name_prefix="render")
        return _pool


def _chunk(render: Callable[[int, int], pa.Array] | None, lo: int, hi: int, splices: list[tuple[int, bytes]],
           gz: bool) -> tuple[list, int, int]:
    """Rows lo..hi-1 with the splices (row position, bytes) put before their rows.

    Returns (pieces to write, crc32, uncompressed length); gzip pieces are one raw deflate
    block sequence ending in a sync flush.
    """
    pieces: list = []
    if hi > lo:
        lines = render(lo, hi)
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset:lines.offset + hi - lo + 1]
        data = memoryview(lines.buffers()[2])
        start = lo
        for cut, text in splices:
            pieces.append(data[offsets[start - lo]:offsets[cut - lo]])
            pieces.append(text)
            start = cut
        pieces.append(data[offsets[start - lo]:offsets[hi - lo]])
    else:
        pieces = [text for _, text in splices]
    if not gz:
        return pieces, 0, 0
    z = _zlib.compressobj(_LEVEL, _zlib.DEFLATED, -15)
    out, crc, size = [], 0, 0
    for p in pieces:
        out.append(z.compress(p))
        crc = _zlib.crc32(p, crc)
        size += len(p)
    out.append(z.flush(_zlib.Z_SYNC_FLUSH))
    return [b"".join(out)], crc, size


class LandingFile:
    """One landing file being written; use as a context manager."""

    def __init__(self, con: duckdb.DuckDBPyConnection | None, path: Path, fmt: str):
        self.con, self.path, self.fmt = con, path, fmt
        self.gz = path.suffix == ".gz"
        self.lines = 0
        self._header_done = fmt != "csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = path.with_name(f".{path.name}.tmp")
        self._out = open(self._tmp, "wb")  # noqa: SIM115 - closed in close()
        self._crc, self._size = 0, 0
        if self.gz:
            self._out.write(_GZIP_HEADER)
        self._jobs: deque[Future] = deque()

    def __enter__(self) -> LandingFile:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._drain()
                if self.gz:
                    self._out.write(_FINAL_BLOCK + struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))
        finally:
            for job in self._jobs:
                job.cancel()
            for job in self._jobs:  # never leave a worker writing into freed buffers
                if not job.cancelled():
                    job.exception()
            self._out.close()
        if exc_type is None:
            if not self._header_done:  # nothing written at all: still a valid, empty delivery
                raise RuntimeError(f"CSV {self.path} closed without a header")
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)

    def write(self, select_sql: str, n_rows: int, raw_lines: list[str] | None = None,
              rng: np.random.Generator | None = None) -> None:
        """Append the rows of `select_sql` (with a 0-based `pos` column, not written).

        Args:
            select_sql: query producing the file's columns in contract order, plus `pos`.
            n_rows: number of rows it returns (positions 0..n_rows-1).
            raw_lines: text lines (no newline) to splice in at up to three random positions.
            rng: randomness for the splice positions (needed when raw_lines is given).
        """
        if self.gz:
            raise ValueError("gzip files are written with write_lines")
        raw_lines = raw_lines or []
        cuts = sorted(int(c) for c in rng.integers(0, n_rows + 1, min(len(raw_lines), 3))) if raw_lines else []
        groups = np.array_split(np.arange(len(raw_lines)), len(cuts)) if cuts else []
        bounds = [0, *cuts, n_rows]
        for i in range(len(bounds) - 1):
            lo, hi = bounds[i], bounds[i + 1]
            if hi > lo or not self._header_done:
                self._copy(f"SELECT * EXCLUDE (pos) FROM ({select_sql}) WHERE pos >= {lo} AND pos < {hi}")
            if i < len(cuts) and len(groups[i]):
                self._out.write("".join(raw_lines[j] + "\n" for j in groups[i]).encode("utf-8"))
        self.lines += n_rows + len(raw_lines)

    def write_lines(self, render: Callable[[int, int], pa.Array], n_rows: int,
                    raw_lines: list[str] | None = None, rng: np.random.Generator | None = None) -> None:
        """Append `n_rows` rendered lines, rendering them `CHUNK_ROWS` at a time on the pool.

        Returns once the last chunk is queued (at most `MAX_AHEAD` chunks of this file are in
        flight): `render` must not depend on anything the caller changes afterwards.

        Args:
            render: `render(lo, hi)` returns the lines of rows lo..hi-1, each ending in a newline;
                called on worker threads.
            n_rows: number of rows.
            raw_lines: text lines (no newline) to splice in at up to three random positions.
            rng: randomness for the splice positions (needed when raw_lines is given).
        """
        raw_lines = raw_lines or []
        cuts = sorted(int(c) for c in rng.integers(0, n_rows + 1, min(len(raw_lines), 3))) if raw_lines else []
        groups = np.array_split(np.arange(len(raw_lines)), len(cuts)) if cuts else []
        splices: dict[int, list[str]] = {}
        for cut, group in zip(cuts, groups, strict=True):
            splices.setdefault(cut, []).extend(raw_lines[j] + "\n" for j in group)
        size = max(MIN_CHUNK_ROWS, min(CHUNK_ROWS, -(-n_rows // RENDER_THREADS)))
        pool = _render_pool()
        for lo in range(0, max(n_rows, 1), size):
            hi = min(lo + size, n_rows)
            mine = sorted((c, "".join(splices.pop(c)).encode("utf-8")) for c in list(splices)
                          if lo <= c <= hi and (c < hi or hi == n_rows))
            while len(self._jobs) >= MAX_AHEAD:
                self._write_next()
            self._jobs.append(pool.submit(_chunk, render, lo, hi, mine, self.gz))
        self.lines += n_rows + len(raw_lines)

    def _write_next(self) -> None:
        pieces, crc, size = self._jobs.popleft().result()
        for p in pieces:
            self._out.write(p)
        if self.gz:
            self._crc = _zlib.crc32_combine(self._crc, crc, size) if self._size else crc
            self._size += size

    def _drain(self) -> None:
        while self._jobs:
            self._write_next()

    def _copy(self, query: str) -> None:
        self._drain()
        part = self.path.with_name(f".{self.path.name}.part")
        options = ["FORMAT JSON"] if self.fmt == "json" else [f"HEADER {str(not self._header_done).lower()}"]
        self.con.execute(f"COPY ({query}) TO {literal(part)} ({', '.join(options)})")
        self._header_done = True
        with open(part, "rb") as src:
            shutil.copyfileobj(src, self._out, 1 << 20)
        part.unlink()


def write_text(path: Path, text: str) -> None:
    """Atomically write a small text file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)

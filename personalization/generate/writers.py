"""Write landing files, splicing a few raw (malformed) lines in between.

CSV files are written by DuckDB's COPY (quoting, header). JSON-lines files get their lines
from `render` (Arrow string kernels) and are written, or gzip-compressed with ISA-L, by a
background thread while the next chunk is rendered. To put malformed lines in the middle of
a file, the rows are written in a few slices with the raw lines in between. A file can be
written in several chunks (the backfill day's pixel file, one simulated day at a time) and
appears atomically when closed.
"""

from __future__ import annotations

import os
import shutil
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

CHUNK_ROWS = 400_000  # rows rendered at a time: bounds memory and Arrow's 2 GiB string limit
MIN_CHUNK_ROWS = 50_000  # smaller files are not split further for the render threads
RENDER_THREADS = 2  # chunks rendered concurrently (the machine's cores)


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
        self._z = _zlib.compressobj(_LEVEL, _zlib.DEFLATED, 31) if self.gz else None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="landing-writer")
        self._pending: Future | None = None

    def __enter__(self) -> LandingFile:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._drain()
            if self._z is not None and exc_type is None:
                self._out.write(self._z.flush())
        finally:
            self._pool.shutdown(wait=True)
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
        """Append `n_rows` rendered lines, rendering them `CHUNK_ROWS` at a time.

        Args:
            render: `render(lo, hi)` returns the lines of rows lo..hi-1, each ending in a newline.
            n_rows: number of rows.
            raw_lines: text lines (no newline) to splice in at up to three random positions.
            rng: randomness for the splice positions (needed when raw_lines is given).
        """
        raw_lines = raw_lines or []
        cuts = sorted(int(c) for c in rng.integers(0, n_rows + 1, min(len(raw_lines), 3))) if raw_lines else []
        groups = np.array_split(np.arange(len(raw_lines)), len(cuts)) if cuts else []
        splices = {}
        for cut, group in zip(cuts, groups, strict=True):
            splices.setdefault(cut, []).extend(raw_lines[j] + "\n" for j in group)
        # Chunks are rendered by RENDER_THREADS threads ahead of the one being written (Arrow's
        # kernels release the GIL), so rendering uses both cores; the bytes do not change.
        size = max(MIN_CHUNK_ROWS, min(CHUNK_ROWS, -(-n_rows // RENDER_THREADS)))
        bounds = [(lo, min(lo + size, n_rows)) for lo in range(0, max(n_rows, 1), size)]
        ahead: list[Future] = []
        with ThreadPoolExecutor(max_workers=RENDER_THREADS, thread_name_prefix="render") as pool:
            for k, (lo, hi) in enumerate(bounds):
                while len(ahead) < RENDER_THREADS and k + len(ahead) < len(bounds):
                    a, b = bounds[k + len(ahead)]
                    ahead.append(pool.submit(render, a, b) if b > a else None)
                job = ahead.pop(0)
                lines, offsets, data = None, np.zeros(1, dtype=np.int32), memoryview(b"")
                if hi > lo:
                    lines = job.result()
                    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset:lines.offset + hi - lo + 1]
                    data = memoryview(lines.buffers()[2])
                start = lo
                for cut in sorted(c for c in splices if lo <= c <= hi and (c < hi or hi == n_rows)):
                    self._emit(data[offsets[start - lo]:offsets[cut - lo]], lines)
                    self._emit("".join(splices.pop(cut)).encode("utf-8"), None)
                    start = cut
                if hi > start:
                    self._emit(data[offsets[start - lo]:offsets[hi - lo]], lines)
        self.lines += n_rows + len(raw_lines)

    def _emit(self, data, keepalive) -> None:
        """Compress and write `data` on the writer thread (one chunk in flight at a time)."""
        self._drain()

        def work(data=data, keepalive=keepalive) -> None:  # keepalive: the Arrow buffer behind data
            self._out.write(self._z.compress(data) if self._z is not None else data)

        self._pending = self._pool.submit(work)

    def _drain(self) -> None:
        if self._pending is not None:
            self._pending.result()
            self._pending = None

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

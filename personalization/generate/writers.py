"""Write landing files through DuckDB, splicing a few raw (malformed) lines in between.

DuckDB's COPY does the heavy lifting (CSV quoting, JSON encoding, gzip). To put malformed
lines in the middle of a file, the rows are written in a few slices (by a `pos` column) with
the raw lines in between; gzip slices are separate gzip members, which gzip readers (Python's
`gzip`, DuckDB) read as one stream. A file can be written in several chunks (the backfill
day's pixel file, one simulated day at a time) and appears atomically when closed.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import duckdb
import numpy as np


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


class LandingFile:
    """One landing file being written; use as a context manager."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, fmt: str):
        self.con, self.path, self.fmt = con, path, fmt
        self.gz = path.suffix == ".gz"
        self.lines = 0
        self._header_done = fmt != "csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = path.with_name(f".{path.name}.tmp")
        self._out = open(self._tmp, "wb")  # noqa: SIM115 - closed in close()

    def __enter__(self) -> LandingFile:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
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
        raw_lines = raw_lines or []
        cuts = sorted(int(c) for c in rng.integers(0, n_rows + 1, min(len(raw_lines), 3))) if raw_lines else []
        groups = np.array_split(np.arange(len(raw_lines)), len(cuts)) if cuts else []
        bounds = [0, *cuts, n_rows]
        for i in range(len(bounds) - 1):
            lo, hi = bounds[i], bounds[i + 1]
            if hi > lo or not self._header_done:
                self._copy(f"SELECT * EXCLUDE (pos) FROM ({select_sql}) WHERE pos >= {lo} AND pos < {hi}")
            if i < len(cuts) and len(groups[i]):
                text = "".join(raw_lines[j] + "\n" for j in groups[i]).encode("utf-8")
                self._out.write(gzip.compress(text, mtime=0) if self.gz else text)
        self.lines += n_rows + len(raw_lines)

    def _copy(self, query: str) -> None:
        part = self.path.with_name(f".{self.path.name}.part")
        options = ["FORMAT JSON"] if self.fmt == "json" else [f"HEADER {str(not self._header_done).lower()}"]
        if self.gz:
            options.append("COMPRESSION GZIP")
        self.con.execute(f"COPY ({query}) TO '{_sql_path(part)}' ({', '.join(options)})")
        self._header_done = True
        with open(part, "rb") as src:
            shutil.copyfileobj(src, self._out, 1 << 20)
        part.unlink()


def render_lines(con: duckdb.DuckDBPyConnection, select_sql: str, fmt: str, scratch: Path) -> list[str]:
    """The text lines `select_sql` would produce in a file (used to build malformed copies)."""
    part = scratch / f".render.{fmt}"
    header = ", HEADER false" if fmt == "csv" else ""
    con.execute(f"COPY (SELECT * EXCLUDE (pos) FROM ({select_sql}) ORDER BY pos) TO "
                f"'{_sql_path(part)}' (FORMAT {fmt.upper()}{header})")
    lines = part.read_text(encoding="utf-8").splitlines()
    part.unlink()
    return lines


def write_text(path: Path, text: str) -> None:
    """Atomically write a small text file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)

"""Writing export files and publishing a finished folder atomically."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from pathlib import Path

import duckdb

from personalization.exceptions import ExportError
from personalization.sql import literal

logger = logging.getLogger(__name__)

DS_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
LATEST = "latest"
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection):
# = + - @ tab CR, as code points: `ascii()` of the first character costs a fraction of a
# regex per cell (≈ 1 CPU s a night over the 1.3M rows of a 1M export's CSVs for people).
_FORMULA_START = tuple(ord(c) for c in "=+-@\t\r")


def column_types(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    """(name, type) of a table or `SELECT` in column order."""
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {relation}").fetchall()]


def has_warehouse_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether the attached warehouse (`wh`) has `table`: marts newer than an old warehouse
    are optional for the export."""
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = 'wh' "
        "AND table_schema = 'main' AND table_name = ?", [table]).fetchone()[0])


def write_parquet(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> int:
    """Parquet of `query` (which must be ordered: the bytes depend on row order); returns
    the rows written (COPY counts them: no second run of the query to count)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return con.execute(
        f"COPY ({query}) TO {literal(path)} (FORMAT parquet, COMPRESSION zstd)").fetchone()[0]


def write_csv(con: duckdb.DuckDBPyConnection, query: str, path: Path,
              neutralise: bool = True, order_by: str | None = None,
              hidden: tuple[str, ...] = ()) -> int:
    """UTF-8 CSV with a header, rows in `order_by` order; returns the rows written.

    With `neutralise` (files for people), text cells a spreadsheet would run as a formula get
    a leading apostrophe; files machines read (deltas, erasures) keep exact values.
    `order_by` (columns of `query`) sorts the outermost statement: an ORDER BY inside `query`
    does not survive the projection around it (DuckDB wrote a 132k-row file in 2,048-row
    vectors out of order, differently on each run). `hidden` columns order the rows but are
    not written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = []
    for name, dtype in column_types(con, f"({query})"):
        if name in hidden:
            continue
        quoted = '"' + name.replace('"', '""') + '"'
        if neutralise and dtype == "VARCHAR":
            cols.append(f"CASE WHEN ascii({quoted}) IN {_FORMULA_START} "
                        f"THEN '''' || {quoted} ELSE {quoted} END AS {quoted}")
        else:
            cols.append(quoted)
    order = f" ORDER BY {order_by}" if order_by else ""
    return con.execute(
        f"COPY (SELECT {', '.join(cols)} FROM ({query}) AS file_rows{order}) TO {literal(path)} "
        "(FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"', DATEFORMAT '%Y-%m-%d')"
    ).fetchone()[0]


def file_entry(path: Path, root: Path) -> dict[str, object]:
    """`{path, sha256, bytes}` of a written file, path relative to the export folder."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return {"path": path.relative_to(root).as_posix(), "sha256": digest.hexdigest(),
            "bytes": path.stat().st_size}


def published_dates(exports_dir: Path) -> list[str]:
    """Published export folders (`YYYY-MM-DD` with a manifest), oldest first."""
    if not exports_dir.exists():
        return []
    return sorted(p.name for p in exports_dir.iterdir()
                  if p.is_dir() and not p.is_symlink() and DS_DIR.match(p.name)
                  and (p / "manifest.json").exists())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_folder(tmp: Path, final: Path) -> None:
    """Move a finished export from `tmp` to `final`; an existing `final` is replaced.

    Renames are atomic on one filesystem: a reader sees the old folder or the new one, never
    a half-written one. The old folder is moved aside first and deleted last, and put back
    if the new one cannot be moved in.
    """
    old = final.with_name(f".old-{final.name}-{os.getpid()}")
    if old.exists():
        shutil.rmtree(old)
    had_old = final.exists()
    try:
        if had_old:
            os.rename(final, old)
        try:
            os.rename(tmp, final)
        except OSError:
            if had_old:
                os.rename(old, final)
            raise
    except OSError as e:
        raise ExportError(f"cannot publish export {tmp} -> {final}: {e}") from e
    _fsync_dir(final.parent)
    if had_old:
        shutil.rmtree(old, ignore_errors=True)


def point_latest(exports_dir: Path, ds_name: str) -> bool:
    """Point `<exports>/latest` at `ds_name` unless a newer export is already latest.

    The link is relative (the folder can move) and swapped with `os.replace` on a temporary
    link, so readers never find `latest` missing. Returns True when the link moved.
    """
    link = exports_dir / LATEST
    if link.exists() and not link.is_symlink():
        raise ExportError(f"{link} exists and is not a symlink; move it away")
    if link.is_symlink():
        current = os.readlink(link)
        if DS_DIR.match(current) and current > ds_name and (exports_dir / current).is_dir():
            return False
    tmp_link = exports_dir / f".latest-{os.getpid()}"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(ds_name)
    os.replace(tmp_link, link)
    return True


def remove_quietly(path: Path) -> None:
    """Delete a temp folder left by a failed run (best effort: the error that got us here
    matters more than a cleanup problem)."""
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as e:  # pragma: no cover - depends on the filesystem
        logger.warning("could not remove %s: %s", path, e)

"""Reads one published export (`<exports>/<ds>/`, layout in docs/architecture.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from personalization.config import Settings
from personalization.exceptions import SyncError
from personalization.sql import literal

# Export columns that are not merge fields: identity, and the experiment bookkeeping.
# Bookkeeping columns of the export, not merge fields to upload.
NON_FIELD_COLUMNS = ("email", "unified_id", "variant", "is_holdout", "FALLBACKS")


@dataclass(frozen=True)
class Contact:
    """One exported contact of one segment."""

    email: str
    unified_id: str
    fields: dict[str, str]  # merge tags (FNAME, CITY, RECO_1, ...), values as text
    variant: str | None = None


@dataclass
class SegmentExport:
    """One segment's rows, split into what may be synced and the holdout control group."""

    name: str
    contacts: list[Contact]
    holdout_emails: set[str]
    added_emails: set[str] = field(default_factory=set)
    removed_emails: set[str] = field(default_factory=set)
    # The segment's own columns (manifest `extra_columns`): values that hold for this
    # segment only, unlike the contact-level merge tags every segment carries.
    own_columns: frozenset[str] = frozenset()
    # The synced contacts' emails in file order (what `contacts` holds, without the fields),
    # filled even when the contacts are not read: the file drop needs only these.
    emails: list[str] = field(default_factory=list)


@dataclass
class ExportView:
    """Everything the sync needs from one export directory."""

    ds: date
    path: Path
    segments: dict[str, SegmentExport]
    erasures: list[str]


def resolve_export_dir(ds: date | None, settings: Settings) -> tuple[date, Path]:
    """The export directory for `ds`, or the one `latest` points to when `ds` is None."""
    root = Path(settings.exports_dir)
    path = root / ("latest" if ds is None else ds.isoformat())
    if not path.exists():
        what = "no export has been published yet" if ds is None else "export not found"
        raise SyncError(f"{what}: {path}")
    path = path.resolve()
    try:
        found = date.fromisoformat(path.name)
    except ValueError:
        raise SyncError(f"export directory {path} is not named after a date") from None
    return found, path


def _rows(con: duckdb.DuckDBPyConnection, path: Path) -> list[dict[str, str | None]]:
    if path.suffix == ".parquet":
        rel = con.sql(f"select columns(*)::varchar from read_parquet('{path}')")
    else:
        rel = con.sql(f"select * from read_csv('{path}', all_varchar = true, header = true)")
    return rel.to_arrow_table().to_pylist()


def _emails(con: duckdb.DuckDBPyConnection, path: Path) -> set[str]:
    if not path.exists():
        return set()
    rows = con.sql(
        f"select distinct lower(trim(email)) as email from read_csv('{path}', all_varchar = true,"
        " header = true) where email is not null and trim(email) <> ''").fetchall()
    return {r[0] for r in rows}


def _segment_entries(path: Path) -> dict[str, frozenset[str]]:
    """`{segment: its own columns}` from the manifest (else every file, no own columns)."""
    manifest = path / "manifest.json"
    if manifest.exists():
        data = json.loads(manifest.read_text())
        # A stale segment that never had a good export has no files: nothing to sync.
        return {s["name"]: frozenset(c.upper() for c in s.get("extra_columns") or [])
                for s in sorted(data.get("segments", []), key=lambda s: s["name"])
                if not (s.get("stale") and not s.get("files"))}
    return {n: frozenset() for n in sorted({p.name.split(".")[0]
                                             for p in (path / "segments").glob("*.*")})}


_TRUE = ("true", "t", "1", "yes")


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


def _emails_and_holdout(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[list[str], set[str]]:
    """The synced emails (file order) and the holdout's, read in SQL with the rules of
    `read_export`'s row loop: blank emails skipped, a holdout flag counts when it reads true.

    No ORDER BY: a filtered scan keeps the file's row order (DuckDB's
    preserve_insertion_order, on by default), as the row loop did."""
    if path.suffix == ".parquet":
        rel = f"read_parquet({literal(path)})"
    else:
        rel = f"read_csv({literal(path)}, all_varchar = true, header = true)"
    # Python's str.strip() on ASCII: space, tab, newline, carriage return, vertical tab, form feed.
    blank = "chr(32) || chr(9) || chr(10) || chr(13) || chr(11) || chr(12)"
    email = f"trim(cast(email as varchar), {blank})"
    rows = con.execute(f"""
        select lower({email}) as email,
               coalesce(lower(trim(cast(is_holdout as varchar), {blank}))
                        in ({', '.join(literal(v) for v in _TRUE)}), false) as holdout
        from {rel}
        where coalesce({email}, '') <> ''""").fetchall()
    return [e for e, h in rows if not h], {e for e, h in rows if h}


def read_export(ds: date | None, settings: Settings, contacts: bool = True) -> ExportView:
    """Load the export for `ds` (None = latest): segments, deltas and erasures.

    With `contacts=False` each segment's `contacts` stay empty and only `emails` and the
    holdout are read, in SQL: an adapter that copies the files (the file drop) needs no
    per-row Python objects (at 1M they were most of its sync).
    """
    found_ds, path = resolve_export_dir(ds, settings)
    con = duckdb.connect(config=settings.duckdb_config("sync"))
    segments: dict[str, SegmentExport] = {}
    for name, own_columns in _segment_entries(path).items():
        parquet, csv = path / "segments" / f"{name}.parquet", path / "segments" / f"{name}.csv"
        source = parquet if parquet.exists() else csv
        if not source.exists():
            raise SyncError(f"segment {name} is in the manifest but {csv} is missing")
        deltas = path / "deltas"
        if not contacts:
            emails, holdout = _emails_and_holdout(con, source)
            segments[name] = SegmentExport(
                name, [], holdout,
                _emails(con, deltas / f"{name}.added.csv") - holdout,
                _emails(con, deltas / f"{name}.removed.csv"),
                own_columns, emails)
            continue
        contacts_read, holdout = [], set()
        for row in _rows(con, source):
            email = (row.get("email") or "").strip().lower()
            if not email:
                continue
            if _is_true(row.get("is_holdout")):
                holdout.add(email)  # control group: must never reach the ESP
                continue
            fields = {k: v for k, v in row.items() if k not in NON_FIELD_COLUMNS and v is not None}
            contacts_read.append(Contact(email, row.get("unified_id") or "", fields,
                                         row.get("variant")))
        segments[name] = SegmentExport(
            name, contacts_read, holdout,
            _emails(con, deltas / f"{name}.added.csv") - holdout,
            _emails(con, deltas / f"{name}.removed.csv"),
            own_columns, [c.email for c in contacts_read],
        )
    erasures = sorted(_emails(con, path / "erasures.csv"))
    con.close()
    return ExportView(found_ds, path, segments, erasures)

"""Read-only access to what the pipeline published: exports, gate results, model cards.

The portal never opens the DuckDB warehouse (dbt may be writing it): everything here reads
files, and Parquet goes through a fresh in-memory DuckDB connection.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb

from personalization.config import Settings
from personalization.portal.security import is_ds, mask_email, safe_child

logger = logging.getLogger(__name__)

GATE_ORDER = ("lake", "marts", "segments", "export")


@dataclass
class Export:
    """One published export folder and its manifest."""

    ds: str
    path: Path
    manifest: dict[str, Any]
    gates: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def segments(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("segments", []))

    def segment(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.segments if s.get("name") == name), None)

    @property
    def status(self) -> str:
        """`failed` if any gate failed, `warning` if any warned, `passed` only if every gate
        says `passed`; anything else (missing, not_available, unknown) is `incomplete`."""
        values = [str(v) for v in (self.manifest.get("quality_gate") or {}).values()]
        values += [str(g.get("status")) for g in self.gates.values()]
        if not values:
            return "unknown"
        if "failed" in values:
            return "failed"
        if "warning" in values:
            return "warning"
        return "passed" if all(v == "passed" for v in values) else "incomplete"

    @property
    def total_rows(self) -> int:
        return sum(int(s.get("rows") or 0) for s in self.segments)


@lru_cache(maxsize=256)
def _read_json(path: str, mtime_ns: int) -> dict[str, Any]:
    # Cached per (path, mtime): a republished export has a new mtime and is read again.
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return _read_json(str(path), path.stat().st_mtime_ns)
    except (OSError, ValueError) as e:
        logger.warning("cannot read %s: %s", path, e)
        return None


def export_dates(settings: Settings) -> list[str]:
    """Published exports (`YYYY-MM-DD` folders with a manifest), newest first.

    Hidden work-in-progress folders and symlinks (`latest`) are skipped.
    """
    root = settings.exports_dir
    if not root.is_dir():
        return []
    return sorted((p.name for p in root.iterdir()
                   if is_ds(p.name) and p.is_dir() and not p.is_symlink()
                   and (p / "manifest.json").is_file()), reverse=True)


def latest_ds(settings: Settings) -> str | None:
    """The `latest` symlink's date, else the newest folder."""
    link = settings.exports_dir / "latest"
    if link.is_symlink():
        name = Path(os.readlink(link)).name
        if is_ds(name) and name in export_dates(settings):
            return name
    dates = export_dates(settings)
    return dates[0] if dates else None


def export_root(settings: Settings, ds: str) -> Path | None:
    """The folder of a published export, or None (also for anything that is not a date)."""
    if ds == "latest":
        ds = latest_ds(settings) or ""
    if not is_ds(ds) or ds not in export_dates(settings):
        return None
    root = (settings.exports_dir / ds).resolve()
    return root if root.is_relative_to(settings.exports_dir.resolve()) else None


def gate_results(settings: Settings, ds: str) -> dict[str, dict[str, Any]]:
    """`{stage: result}` from `<quality_dir>/<ds>/<stage>.json`."""
    out = {}
    for stage in GATE_ORDER:
        path = settings.quality_dir / ds / f"{stage}.json"
        result = read_json(path) if path.is_file() else None
        if result is not None:
            out[stage] = result
    return out


def load_export(settings: Settings, ds: str) -> Export | None:
    root = export_root(settings, ds)
    if root is None:
        return None
    manifest = read_json(root / "manifest.json")
    if manifest is None:
        return None
    return Export(ds=root.name, path=root, manifest=manifest, gates=gate_results(settings, root.name))


def all_exports(settings: Settings) -> list[Export]:
    """Every published export, newest first."""
    return [e for ds in export_dates(settings) if (e := load_export(settings, ds))]


def download_path(settings: Settings, ds: str, relative: str) -> Path | None:
    """A file of a published export, only if it stays inside that export folder."""
    root = export_root(settings, ds)
    return safe_child(root, relative) if root else None


def segment_history(settings: Settings, name: str) -> list[dict[str, Any]]:
    """Per export date (oldest first): rows, added, removed, changed, stale for one segment."""
    out = []
    for export in reversed(all_exports(settings)):
        seg = export.segment(name)
        if seg is None:
            continue
        out.append({"ds": export.ds, "rows": int(seg.get("rows") or 0),
                    "added": int(seg.get("added") or 0), "removed": int(seg.get("removed") or 0),
                    "changed": int(seg.get("changed") or 0), "stale": bool(seg.get("stale")),
                    "excluded": sum(int(v or 0) for v in (seg.get("excluded") or {}).values())})
    return out


def segment_file(export: Export, name: str) -> Path | None:
    """The segment's Parquet file (machines read the Parquet: exact, typed values)."""
    seg = export.segment(name)
    entry = ((seg or {}).get("files") or {}).get("parquet") or {}
    return safe_child(export.path, str(entry.get("path", ""))) if entry else None


@lru_cache(maxsize=512)
def _unique_people(paths: tuple[str, ...], stamp: tuple[int, ...]) -> tuple[int, int]:
    con = duckdb.connect()  # in memory: never the warehouse file
    try:
        return con.execute(
            "SELECT count(DISTINCT unified_id),"
            " count(DISTINCT unified_id) FILTER (WHERE is_holdout IS NOT DISTINCT FROM false)"
            " FROM read_parquet(?, union_by_name = true)", [list(paths)]).fetchone()
    finally:
        con.close()


def unique_people(export: Export) -> tuple[int, int]:
    """(people in any segment, people who may be mailed): each person counted once.

    The sum of the segments' rows counts a person once per segment they are in; this is
    what a marketer means by "how many people". Cached per file version.
    """
    paths = [p for s in export.segments if (p := segment_file(export, str(s.get("name"))))]
    if not paths:
        return 0, 0
    return _unique_people(tuple(map(str, paths)), tuple(p.stat().st_mtime_ns for p in paths))


def _query(path: Path, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    con = duckdb.connect()  # in memory: never the warehouse file
    try:
        cur = con.execute(sql.replace("{src}", "read_parquet(?)"), [str(path), *params])
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def members(export: Export, name: str, limit: int = 20, offset: int = 0) -> list[dict[str, Any]]:
    """A page of a segment's members with merge fields; emails masked, row position added."""
    path = segment_file(export, name)
    if path is None:
        return []
    rows = _query(path, "SELECT * FROM {src} ORDER BY unified_id LIMIT ? OFFSET ?",
                  [int(limit), int(offset)])
    for i, row in enumerate(rows):
        row["row"] = offset + i
        row["email"] = mask_email(row.get("email"))
    return rows


def member(export: Export, name: str, unified_id: str | None = None,
           row: int | None = None) -> dict[str, Any] | None:
    """One member by `unified_id` or by row position (never by email)."""
    path = segment_file(export, name)
    if path is None:
        return None
    if unified_id is not None:
        found = _query(path, "SELECT * FROM {src} WHERE unified_id = ? LIMIT 1", [unified_id])
    else:
        found = _query(path, "SELECT * FROM {src} ORDER BY unified_id LIMIT 1 OFFSET ?",
                       [max(int(row or 0), 0)])
    return found[0] if found else None


def model_cards(settings: Settings) -> list[dict[str, Any]]:
    """`[{model, version, metadata}]` for every version with a model card, newest first."""
    root = settings.models_dir
    if not root.is_dir():
        return []
    out = []
    for card in sorted(root.glob("*/*/model_card.md")):
        meta = read_json(card.parent / "metadata.json") or {}
        rows = meta.get("rows")
        window = meta.get("training_window") or {}
        out.append({
            "model": card.parent.parent.name, "version": card.parent.name, "metadata": meta,
            # The registry writes `trained_ds` (the run's date); older cards may say otherwise.
            "trained_on": str(meta.get("trained_ds") or meta.get("trained_on")
                              or meta.get("trained_at") or ""),
            "rows": rows.get("final_fit") if isinstance(rows, dict) else rows,
            "window": f"{window['from']} – {window['to']}" if window.get("from") else "",
            "status": meta.get("status") or ("approved" if meta.get("approved") else
                                             "not approved" if "approved" in meta else ""),
        })
    return sorted(out, key=lambda c: (c["model"], c["trained_on"], c["version"]), reverse=True)


def model_card(settings: Settings, model: str, version: str) -> str | None:
    path = safe_child(settings.models_dir, f"{model}/{version}/model_card.md")
    return path.read_text(encoding="utf-8") if path else None

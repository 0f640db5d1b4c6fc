"""`publish(ds, settings)`: build `<exports>/<ds>/` in a temp folder, check it, swap it in.

The coordinator: the jobs live in `segments` (one segment's files), `stale` (carry-over of a
failed segment), `erasures` (erasures.csv, consent.parquet), `run_results` (which segments
failed) and `manifest`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from personalization.config import Settings
from personalization.cursors import map_on_cursors
from personalization.exceptions import ExportError, QualityGateError, WarehouseError
from personalization.export import assignment, consent, exclusions, files, manifest
from personalization.export.campaigns import write_campaign_results
from personalization.export.erasures import write_consent_audit, write_erasures
from personalization.export.merge_fields import (
    build_base,
    build_contact_fields,
    load_merge_fields,
    register_locales,
)
from personalization.export.run_results import find_failed_segments
from personalization.export.segments import WH, export_segment
from personalization.export.stale import carry_over
from personalization.observability import StepReport, log_event, timed
from personalization.privacy import encryption
from personalization.sql import literal
from personalization.warehouse.catalog import Segment, list_segments

logger = logging.getLogger(__name__)

# Gate results that let an export be published (a warning is a pass with findings).
PASSING_GATE_STATUSES = ("passed", "warning")


def _connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB with the warehouse attached read-only: the export never writes to it.

    What every segment reads (consent, merge fields, exclusions) is a table of the in-memory
    database, which every cursor sees; a segment's own tables are TEMP, which only the
    cursor that made them sees (`_build` runs two segments at a time)."""
    if not settings.warehouse_path.exists():
        raise ExportError(f"warehouse not found at {settings.warehouse_path}: build it first")
    # In memory, spilling to disk past memory_limit (an in-memory DuckDB without a temp
    # directory fails instead: seen at 1M customers).
    con = duckdb.connect(config=settings.duckdb_config("export"))
    try:
        encryption.configure(con, settings)  # key, and the lake's erasure requests' key
        con.execute(f"ATTACH {literal(settings.warehouse_path)} AS wh"
                    f"{encryption.attach_options(settings, read_only=True)}")
    except duckdb.Error as e:
        con.close()
        raise ExportError(f"cannot open warehouse {settings.warehouse_path}: {e}") from e
    return con


def _run_export_gate(tmp: Path, ds: date, settings: Settings) -> str:
    """Run the export quality gate on the temp folder; anything but a pass raises.

    The gate fails closed: if the quality package cannot be imported, the gate raises
    anything, or it returns a status other than `passed`/`warning`, nothing is published.
    """
    try:
        from personalization.quality import validate_export

        status = str(validate_export(tmp, ds, settings).status)
    except QualityGateError:
        raise
    except Exception as e:  # an import error or a crash in the gate is a failed gate
        raise QualityGateError(
            f"export quality gate for {ds} could not run ({type(e).__name__}: {e}); "
            "nothing is published") from e
    if status not in PASSING_GATE_STATUSES:
        raise QualityGateError(f"export quality gate for {ds} returned {status!r}; "
                               "nothing is published")
    return status


def _build(ds: date, settings: Settings, tmp: Path, reported_failed: Iterable[str],
           audit: Path) -> dict[str, Any]:
    exports_dir = settings.exports_dir
    earlier = [d for d in files.published_dates(exports_dir) if d < ds.isoformat()]
    previous = exports_dir / earlier[-1] if earlier else None
    try:
        segments = list_segments(settings)
    except WarehouseError as e:
        raise ExportError(f"cannot list segments for export {ds}: {e}") from e
    cfg = load_merge_fields(settings)
    con = _connect(settings)
    try:
        register_locales(con, cfg)
        suppressed = consent.register_suppressions(con, settings)
        consent.register_erasures(con, ds, settings)
        consent.register_consent_filter(con, WH)
        eligible = build_base(con, ds, cfg, settings, WH)
        build_contact_fields(con, cfg)
        exclusions.start(con)
        excluded_all = dict(con.execute(
            "SELECT exclusion_reason, count(*) FROM export_contact_consent "
            "WHERE exclusion_reason IS NOT NULL GROUP BY 1").fetchall())
        failed = find_failed_segments(con, segments, ds, settings, reported_failed)

        def one(cursor: duckdb.DuckDBPyConnection, segment: Segment) -> dict[str, Any]:
            if segment.name in failed:
                return carry_over(cursor, segment, failed[segment.name], ds, tmp, exports_dir)
            entry = export_segment(cursor, segment, cfg, settings, tmp, previous)
            return {**entry, "data_ds": ds.isoformat()}

        # Two segments at a time, each on its own cursor: a segment's statements are small
        # and many (members, rows, a Parquet file and five CSV files), and writing a CSV keeps
        # one core busy (the export at 1M: ≈ 5 s less a night). After an error no other
        # segment starts, and it fails the export.
        entries = map_on_cursors(con, segments, one, workers=min(2, settings.duckdb_threads))
        erasures = write_erasures(con, tmp, previous)
        exclusions.write(con, audit)
        consent_file = write_consent_audit(con, tmp, WH)
        campaigns = write_campaign_results(con, tmp, WH)
        versions = manifest.model_versions(con, WH)
    except duckdb.Error as e:
        raise ExportError(f"export {ds} failed in DuckDB: {e}") from e
    finally:
        con.close()
    return {
        "manifest_version": manifest.MANIFEST_VERSION,
        "ds": ds.isoformat(),
        "created_at": manifest.created_at(ds),
        "previous_export": previous.name if previous else None,
        "quality_gate": {**manifest.gate_results(ds, settings), "export": "pending"},
        "model_versions": versions,
        "source_dates": manifest.source_dates(ds, settings),
        "holdout": {"pct": settings.holdout_pct, "salt": assignment.HOLDOUT_SALT},
        "file_kinds": manifest.FILE_KINDS,
        "contacts": {
            "eligible": eligible,
            "excluded": {r: int(excluded_all.get(r, 0)) for r in consent.EXCLUSION_REASONS
                         if r != "no_profile"},
            "suppression_list": suppressed,
        },
        "erasures": erasures,
        "consent": consent_file,
        "campaigns": campaigns,
        "segments": entries,
    }


def publish(ds: date, settings: Settings, failed_segments: Iterable[str] = ()) -> StepReport:
    """Write and atomically publish the export of `ds` to `<exports>/<ds>/`.

    Builds everything in `<exports>/.tmp-<ds>-<pid>`, runs the export quality gate on it
    (fails closed: a gate that cannot run is a failed gate), then renames it into place and
    moves `<exports>/latest`. A rerun for the same `ds` with the same inputs gives the same
    bytes. On any failure the temp folder is removed and the published exports are untouched.

    Args:
        ds: the logical date.
        settings: paths and export settings (`holdout_pct`, `locale`).
        failed_segments: segment names the segment build reported as failed; their files are
            carried over from the previous export and flagged `stale`.

    Returns:
        A StepReport: rows_in = segment members, rows_out = exported rows.

    Raises:
        ExportError: inputs missing or files cannot be written/published.
        QualityGateError: the export gate rejected the export, or could not run (import
            error, any exception): nothing is published.
    """
    exports_dir = settings.exports_dir
    exports_dir.mkdir(parents=True, exist_ok=True)
    tmp = exports_dir / f".tmp-{ds.isoformat()}-{os.getpid()}"
    # Exclusions (for the portal's contact lookup) live outside the published folder.
    audit = exclusions.tmp_path(settings, ds.isoformat())
    with timed() as t:
        files.remove_quietly(tmp)
        tmp.mkdir()
        try:
            result = _build(ds, settings, tmp, failed_segments, audit)
            manifest.write_manifest(tmp / "manifest.json", result)
            result["quality_gate"]["export"] = _run_export_gate(tmp, ds, settings)
            manifest.write_manifest(tmp / "manifest.json", result)
            files.publish_folder(tmp, exports_dir / ds.isoformat())
            exclusions.put_in_place(audit, settings, ds.isoformat())
        except BaseException:
            files.remove_quietly(tmp)
            audit.unlink(missing_ok=True)
            raise
        latest_moved = files.point_latest(exports_dir, ds.isoformat())
    segs = result["segments"]
    stale = [s["name"] for s in segs if s["stale"]]
    report = StepReport(
        step="export", ds=ds.isoformat(),
        rows_in=sum(s.get("members", s["rows"]) for s in segs),
        rows_out=sum(s["rows"] for s in segs),
        seconds=t["seconds"],
        status="warning" if stale else "ok",
        details={
            "path": str(exports_dir / ds.isoformat()),
            "segments": len(segs), "stale_segments": stale,
            "excluded": result["contacts"]["excluded"],
            "erasures": result["erasures"]["rows"], "new_erasures": result["erasures"]["new"],
            "quality_gate_export": result["quality_gate"]["export"],
            "latest_moved": latest_moved,
        },
    )
    log_event(logger, "export_published", ds=report.ds, rows_in=report.rows_in,
              rows_out=report.rows_out, segments=len(segs), stale=stale,
              seconds=report.seconds)
    return report

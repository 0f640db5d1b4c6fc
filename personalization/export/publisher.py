"""`publish(ds, settings)`: build `<exports>/<ds>/` in a temp folder, check it, swap it in."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from personalization.config import Settings
from personalization.exceptions import ExportError, QualityGateError, WarehouseError
from personalization.export import (
    assignment,
    consent,
    deltas,
    exclusions,
    files,
    mailable,
    manifest,
)
from personalization.export.merge_fields import (
    MergeFieldConfig,
    build_base,
    load_merge_fields,
    merge_select_sql,
    register_locales,
)
from personalization.observability import StepReport, log_event, timed
from personalization.privacy import encryption
from personalization.warehouse.catalog import Segment, list_segments

logger = logging.getLogger(__name__)

WH = "wh.main"
RESERVED = {"EMAIL", "UNIFIED_ID", "VARIANT", "IS_HOLDOUT", "FALLBACKS"}
FAILED_DBT_STATUSES = {"error", "fail", "skipped", "runtime error"}
# Gate results that let an export be published (a warning is a pass with findings).
PASSING_GATE_STATUSES = ("passed", "warning")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB with the warehouse attached read-only: the export never writes to it."""
    if not settings.warehouse_path.exists():
        raise ExportError(f"warehouse not found at {settings.warehouse_path}: build it first")
    # In memory, spilling to disk past memory_limit (an in-memory DuckDB without a temp
    # directory fails instead: seen at 1M customers).
    spill = settings.home / "duckdb_tmp" / "export"
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"memory_limit": settings.duckdb_memory_limit,
                                 "threads": settings.duckdb_threads,
                                 "temp_directory": str(spill)})
    try:
        encryption.configure(con, settings)  # key, and the lake's erasure requests' key
        con.execute(f"ATTACH {_literal(str(settings.warehouse_path))} AS wh"
                    f"{encryption.attach_options(settings, read_only=True)}")
    except duckdb.Error as e:
        con.close()
        raise ExportError(f"cannot open warehouse {settings.warehouse_path}: {e}") from e
    return con


def _campaign(segment: Segment) -> tuple[str, list[str]]:
    campaign = str(segment.meta.get("campaign_id") or segment.name)
    variants = segment.meta.get("variants") or list(assignment.DEFAULT_VARIANTS)
    if isinstance(variants, str):
        variants = [v.strip() for v in variants.split(",") if v.strip()]
    return campaign, [str(v) for v in variants]


def find_failed_segments(con: duckdb.DuckDBPyConnection, segments: list[Segment], ds: date,
                    settings: Settings, reported: Iterable[str] = ()) -> dict[str, str]:
    """Segments whose build failed: reported by the caller, missing from the warehouse, or
    in error/skipped in dbt's `run_results.json` of this `ds`. Returns name -> reason."""
    failed = {name: "reported failed by the segment build" for name in reported}
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_catalog = 'wh' AND table_schema = 'main'").fetchall()}
    names = {s.name for s in segments}
    for name in sorted(names - tables):
        failed.setdefault(name, "table missing from the warehouse")
    # What the segment build recorded for this ds (run_results.json only holds the last call).
    record = settings.dbt_target_dir / f"segment_build_{ds.isoformat()}.json"
    if record.exists():
        for name, message in json.loads(record.read_text()).get("failed_segments", {}).items():
            if name in names:
                failed.setdefault(name, f"segment build failed: {message}")
    run_results = settings.dbt_target_dir / "run_results.json"
    if run_results.exists():
        try:
            data = json.loads(run_results.read_text())
        except ValueError as e:
            logger.warning("cannot read %s: %s", run_results, e)
            data = {}
        run_vars = (data.get("args") or {}).get("vars") or {}
        run_ds = run_vars.get("ds") if isinstance(run_vars, dict) else None
        if run_ds in (None, ds.isoformat()):
            for result in data.get("results", []):
                parts = str(result.get("unique_id", "")).split(".")
                if parts[0] == "model" and parts[-1] in names \
                        and str(result.get("status")) in FAILED_DBT_STATUSES:
                    failed.setdefault(parts[-1], f"dbt status {result.get('status')}")
    return failed


def _extra_columns(con: duckdb.DuckDBPyConnection, segment: Segment,
                   cfg: MergeFieldConfig) -> list[tuple[str, str]]:
    """(source column, SQL over `m`) for the segment's own columns, named in upper case.

    Lists become `a, b, c` text (merge tags are text); collisions with standard columns
    are skipped with a warning.
    """
    taken = RESERVED | set(cfg.tags)
    out = []
    for name, dtype in files.column_types(con, f"{WH}.{_ident(segment.name)}"):
        if name.lower() == "unified_id":
            continue
        tag = name.upper()
        if tag in taken:
            log_event(logger, "export_column_skipped", logging.WARNING, segment=segment.name,
                      column=name, why="collides with a standard export column")
            continue
        taken.add(tag)
        col = f"m.{_ident(name)}"
        if dtype.endswith("[]"):
            expr = f"array_to_string(CAST({col} AS VARCHAR[]), ', ')"
        elif dtype.startswith(("STRUCT", "MAP", "UNION")):
            expr = f"CAST({col} AS VARCHAR)"
        else:
            expr = col
        out.append((name, f"{expr} AS {_ident(tag)}"))
    return out


def _not_expired(con: duckdb.DuckDBPyConnection, segment: Segment) -> str:
    """SQL condition keeping only members with an open spell in the membership history.

    Expiry (a member inactive for `expires_after_days`) is decided once, in dbt's history
    layer; the export follows it for every segment the history has processed."""
    has_history = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = 'wh' "
        "AND table_schema = 'main' AND table_name = 'segment_membership_history'").fetchone()[0]
    if not has_history:
        return ""
    history = f"{WH}.segment_membership_history"
    processed = con.execute(f"SELECT count(*) FROM {history} WHERE segment = ?",
                            [segment.name]).fetchone()[0]
    if not processed:
        return ""
    return (f" AND CAST(unified_id AS VARCHAR) IN (SELECT unified_id FROM {history} "
            f"WHERE segment = {_literal(segment.name)} AND left_on IS NULL)")


def _export_segment(con: duckdb.DuckDBPyConnection, segment: Segment, cfg: MergeFieldConfig,
                    settings: Settings, tmp: Path, previous: Path | None) -> dict[str, Any]:
    table = f"{WH}.{_ident(segment.name)}"
    extras = _extra_columns(con, segment, cfg)
    others = ", ".join(f"{_ident(name)}" for name, _ in extras)
    # Members: one row per person (a segment should already be, but the export must not
    # send twice); the ORDER BY ALL makes the kept row deterministic.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE export_members AS
        SELECT DISTINCT ON (unified_id) *
        FROM (SELECT CAST(unified_id AS VARCHAR) AS unified_id{', ' + others if others else ''}
              FROM {table} WHERE unified_id IS NOT NULL{_not_expired(con, segment)})
        ORDER BY ALL
    """)
    members = con.execute("SELECT count(*) FROM export_members").fetchone()[0]
    excluded = consent.exclusion_counts(con, "export_members")
    exclusions.record(con, segment.name, "export_members")
    campaign, variants = _campaign(segment)
    extra_sql = "".join(f",\n    {sql}" for _, sql in extras)
    # The consent filter is the inner join on export_eligible_contacts: nothing else decides.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE export_segment_rows AS
        SELECT
            b.email,
            b.unified_id,
            {merge_select_sql(cfg)}{extra_sql},
            {assignment.variant_sql('b.unified_id', campaign, variants)} AS variant,
            {assignment.holdout_sql('b.unified_id', settings.holdout_pct)} AS is_holdout
        FROM export_members AS m
        JOIN export_eligible_contacts AS e ON e.unified_id = m.unified_id
        JOIN export_base AS b ON b.unified_id = e.unified_id
        ORDER BY b.unified_id
    """)
    rows, holdout = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE is_holdout) FROM export_segment_rows").fetchone()
    ordered = "SELECT * FROM export_segment_rows ORDER BY unified_id"
    seg_dir = tmp / "segments"
    files.write_csv(con, ordered, seg_dir / f"{segment.name}.csv")
    files.write_parquet(con, ordered, seg_dir / f"{segment.name}.parquet")
    mailable_rows = mailable.write_mailable(
        con, "export_segment_rows", tmp / mailable.MAILABLE_DIR / f"{segment.name}.csv")
    prev_parquet = previous / "segments" / f"{segment.name}.parquet" if previous else None
    delta = deltas.write_deltas(con, "export_segment_rows", prev_parquet, tmp / "deltas",
                                segment.name)
    declared_unknown = sorted(
        f for f in segment.merge_fields
        if f.upper() not in set(cfg.tags) | {name.upper() for name, _ in extras} | RESERVED
    )
    if declared_unknown:
        log_event(logger, "export_unknown_merge_fields", logging.WARNING, segment=segment.name,
                  fields=declared_unknown)
    log_event(logger, "export_segment", segment=segment.name, members=members, rows=rows,
              added=delta["added"], removed=delta["removed"], holdout=holdout,
              excluded=sum(excluded.values()))
    return {
        "name": segment.name, "description": segment.description, "owner": segment.owner,
        "campaign_id": campaign, "variants": variants, "stale": False,
        "members": members, "rows": rows, "added": delta["added"], "removed": delta["removed"],
        "changed": delta["changed"], "holdout": holdout, "mailable_rows": mailable_rows,
        "excluded": excluded,
        "extra_columns": [name.upper() for name, _ in extras],
        "unknown_merge_fields": declared_unknown,
        "files": _segment_files(tmp, segment.name, delta),
    }


def _segment_files(tmp: Path, name: str, delta: dict[str, Any]) -> dict[str, Any]:
    return {
        "mailable": files.file_entry(tmp / mailable.MAILABLE_DIR / f"{name}.csv", tmp),
        "csv": files.file_entry(tmp / "segments" / f"{name}.csv", tmp),
        "parquet": files.file_entry(tmp / "segments" / f"{name}.parquet", tmp),
        **{kind: files.file_entry(delta[f"{kind}_path"], tmp)
           for kind in ("added", "removed", "changed")},
    }


def _stale_segment(con: duckdb.DuckDBPyConnection, segment: Segment, reason: str, ds: date,
                   tmp: Path, exports_dir: Path) -> dict[str, Any]:
    """Carry the segment's files over from the newest earlier export that has them."""
    campaign, variants = _campaign(segment)
    entry: dict[str, Any] = {
        "name": segment.name, "description": segment.description, "owner": segment.owner,
        "campaign_id": campaign, "variants": variants, "stale": True, "stale_reason": reason,
    }
    source = next((exports_dir / d for d in reversed(files.published_dates(exports_dir))
                   if d < ds.isoformat()
                   and (exports_dir / d / "segments" / f"{segment.name}.parquet").exists()), None)
    log_event(logger, "export_segment_stale", logging.WARNING, segment=segment.name,
              reason=reason, kept_from=source.name if source else None)
    if source is None:
        return {**entry, "data_ds": None, "rows": 0, "added": 0, "removed": 0, "changed": 0,
                "holdout": 0, "mailable_rows": 0, "files": {}}
    seg_dir = tmp / "segments"
    seg_dir.mkdir(parents=True, exist_ok=True)
    for ext in ("csv", "parquet"):
        shutil.copyfile(source / "segments" / f"{segment.name}.{ext}",
                        seg_dir / f"{segment.name}.{ext}")
    parquet = seg_dir / f"{segment.name}.parquet"
    rows, holdout = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE is_holdout) FROM read_parquet({_literal(str(parquet))})"
    ).fetchone()
    prev_entry = next((s for s in manifest.read_manifest(source / "manifest.json").get("segments", [])
                       if s.get("name") == segment.name), {})
    delta = deltas.write_empty_deltas(con, parquet, tmp / "deltas", segment.name)
    mailable_rows = mailable.write_mailable(
        con, f"read_parquet({_literal(str(parquet))})",
        tmp / mailable.MAILABLE_DIR / f"{segment.name}.csv")
    return {**entry, "data_ds": prev_entry.get("data_ds") or source.name, "rows": rows,
            "added": 0, "removed": 0, "changed": 0, "holdout": holdout,
            "mailable_rows": mailable_rows,
            "files": _segment_files(tmp, segment.name, delta)}


def _write_erasures(con: duckdb.DuckDBPyConnection, tmp: Path, previous: Path | None) -> dict[str, Any]:
    prev_csv = previous / "erasures.csv" if previous else None
    if prev_csv is not None and prev_csv.exists():
        is_new = (f"email_sha256 NOT IN (SELECT email_sha256 FROM "
                  f"read_csv({_literal(str(prev_csv))}, header=true, all_varchar=true))")
    else:
        is_new = "true"
    query = f"""SELECT email, email_sha256, strftime(requested_at, '%Y-%m-%dT%H:%M:%SZ') AS requested_at,
                       {is_new} AS is_new
                FROM export_erasures ORDER BY email_sha256"""
    path = tmp / "erasures.csv"
    files.write_csv(con, query, path, neutralise=False)
    rows, new = con.execute(f"SELECT count(*), count(*) FILTER (WHERE is_new) FROM ({query})").fetchone()
    return {"rows": rows, "new": new, "file": files.file_entry(path, tmp)}


def _write_consent(con: duckdb.DuckDBPyConnection, tmp: Path) -> dict[str, Any] | None:
    """`consent.parquet`: for every exported contact, the source record and timestamp whose
    consent the export relied on (the `consent_audit` mart). None when the mart is missing."""
    has_audit = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = 'wh' "
        "AND table_schema = 'main' AND table_name = 'consent_audit'").fetchone()[0]
    segment_files = sorted((tmp / "segments").glob("*.parquet"))
    if not has_audit or not segment_files:
        return None
    files_sql = ", ".join(_literal(str(f)) for f in segment_files)
    query = f"""
        SELECT c.unified_id, c.consent_source, c.consent_source_id, c.consent_recorded_at,
               c.opted_in_at
        FROM {WH}.consent_audit AS c
        WHERE c.unified_id IN (SELECT CAST(unified_id AS VARCHAR)
                               FROM read_parquet([{files_sql}], union_by_name = true))
        ORDER BY c.unified_id"""
    path = tmp / "consent.parquet"
    files.write_parquet(con, query, path)
    rows = con.execute(f"SELECT count(*) FROM ({query})").fetchone()[0]
    return {"rows": rows, "file": files.file_entry(path, tmp)}


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
        exclusions.start(con)
        excluded_all = dict(con.execute(
            "SELECT exclusion_reason, count(*) FROM export_contact_consent "
            "WHERE exclusion_reason IS NOT NULL GROUP BY 1").fetchall())
        failed = find_failed_segments(con, segments, ds, settings, reported_failed)
        entries = []
        for segment in segments:
            if segment.name in failed:
                entries.append(_stale_segment(con, segment, failed[segment.name], ds, tmp,
                                              exports_dir))
            else:
                entry = _export_segment(con, segment, cfg, settings, tmp, previous)
                entries.append({**entry, "data_ds": ds.isoformat()})
        erasures = _write_erasures(con, tmp, previous)
        exclusions.write(con, audit)
        consent_file = _write_consent(con, tmp)
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

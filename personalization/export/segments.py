"""One segment's export: members, consent filter, merge fields, A/B, files and deltas."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import duckdb

from personalization.config import Settings
from personalization.export import assignment, consent, deltas, exclusions, files, mailable
from personalization.export.merge_fields import MergeFieldConfig
from personalization.observability import log_event
from personalization.sql import identifier, literal
from personalization.warehouse.catalog import Segment

logger = logging.getLogger(__name__)

WH = "wh.main"  # the warehouse, attached read-only by the publisher
RESERVED = {"EMAIL", "UNIFIED_ID", "VARIANT", "IS_HOLDOUT", "FALLBACKS"}


def campaign_of(segment: Segment) -> tuple[str, list[str]]:
    campaign = str(segment.meta.get("campaign_id") or segment.name)
    variants = segment.meta.get("variants") or list(assignment.DEFAULT_VARIANTS)
    if isinstance(variants, str):
        variants = [v.strip() for v in variants.split(",") if v.strip()]
    return campaign, [str(v) for v in variants]


def _extra_columns(con: duckdb.DuckDBPyConnection, segment: Segment,
                   cfg: MergeFieldConfig) -> list[tuple[str, str]]:
    """(source column, SQL over `m`) for the segment's own columns, named in upper case.

    Lists become `a, b, c` text (merge tags are text); collisions with standard columns
    are skipped with a warning.
    """
    taken = RESERVED | set(cfg.tags)
    out = []
    for name, dtype in files.column_types(con, f"{WH}.{identifier(segment.name)}"):
        if name.lower() == "unified_id":
            continue
        tag = name.upper()
        if tag in taken:
            log_event(logger, "export_column_skipped", logging.WARNING, segment=segment.name,
                      column=name, why="collides with a standard export column")
            continue
        taken.add(tag)
        col = f"m.{identifier(name)}"
        if dtype.endswith("[]"):
            expr = f"array_to_string(CAST({col} AS VARCHAR[]), ', ')"
        elif dtype.startswith(("STRUCT", "MAP", "UNION")):
            expr = f"CAST({col} AS VARCHAR)"
        else:
            expr = col
        out.append((name, f"{expr} AS {identifier(tag)}"))
    return out


def _not_expired(con: duckdb.DuckDBPyConnection, segment: Segment) -> str:
    """SQL condition keeping only members with an open spell in the membership history.

    Expiry (a member inactive for `expires_after_days`) is decided once, in dbt's history
    layer; the export follows it for every segment the history has processed."""
    has_history = files.has_warehouse_table(con, "segment_membership_history")
    if not has_history:
        return ""
    history = f"{WH}.segment_membership_history"
    processed = con.execute(f"SELECT count(*) FROM {history} WHERE segment = ?",
                            [segment.name]).fetchone()[0]
    if not processed:
        return ""
    return (f" AND CAST(unified_id AS VARCHAR) IN (SELECT unified_id FROM {history} "
            f"WHERE segment = {literal(segment.name)} AND left_on IS NULL)")


def export_segment(con: duckdb.DuckDBPyConnection, segment: Segment, cfg: MergeFieldConfig,
                    settings: Settings, tmp: Path, previous: Path | None) -> dict[str, Any]:
    table = f"{WH}.{identifier(segment.name)}"
    extras = _extra_columns(con, segment, cfg)
    others = ", ".join(f"{identifier(name)}" for name, _ in extras)
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
    campaign, variants = campaign_of(segment)
    extra_sql = "".join(f",\n    {sql}" for _, sql in extras)
    # The consent filter is the inner join on export_eligible_contacts: nothing else decides.
    tags = ", ".join(f"b.{identifier(tag)}" for tag in (*cfg.tags, "FALLBACKS"))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE export_segment_rows AS
        SELECT
            b.email,
            b.unified_id,
            {tags}{extra_sql},
            {assignment.variant_sql('b.unified_id', campaign, variants)} AS variant,
            {assignment.holdout_sql('b.unified_id', settings.holdout_pct)} AS is_holdout
        FROM export_members AS m
        JOIN export_eligible_contacts AS e ON e.unified_id = m.unified_id
        JOIN export_contact_fields AS b ON b.unified_id = e.unified_id
    """)  # unordered: each file written from it sorts its own rows (files.write_csv)
    rows, holdout = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE is_holdout) FROM export_segment_rows").fetchone()
    seg_dir = tmp / "segments"
    files.write_csv(con, "SELECT * FROM export_segment_rows", seg_dir / f"{segment.name}.csv",
                    order_by="unified_id")
    files.write_parquet(con, "SELECT * FROM export_segment_rows ORDER BY unified_id",
                        seg_dir / f"{segment.name}.parquet")
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
        "files": segment_files(tmp, segment.name, delta),
    }


def segment_files(tmp: Path, name: str, delta: dict[str, Any]) -> dict[str, Any]:
    return {
        "mailable": files.file_entry(tmp / mailable.MAILABLE_DIR / f"{name}.csv", tmp),
        "csv": files.file_entry(tmp / "segments" / f"{name}.csv", tmp),
        "parquet": files.file_entry(tmp / "segments" / f"{name}.parquet", tmp),
        **{kind: files.file_entry(delta[f"{kind}_path"], tmp)
           for kind in ("added", "removed", "changed")},
    }

"""File drop: the default "ESP" that needs no credentials.

Writes the export as CSV into `<home>/esp_drop/<ds>/` where an ESP's import job (SFTP
pickup, watched bucket, ...) collects it:

    segments/<segment>.csv          full list, holdout removed (mirror mode input)
    deltas/<segment>.added.csv      holdout removed
    deltas/<segment>.removed.csv
    erasures.csv
    manifest.json                   rows and sha256 per file

The folder is built under a temporary name and renamed into place, so a pickup never sees
half a drop, and a rerun replaces the day's drop with identical files (idempotent).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import duckdb

from personalization.cursors import map_on_cursors
from personalization.esp.base import ERASURE_LIST, Adapter, SegmentPlan, SyncPlan, SyncState
from personalization.esp.reader import ExportView
from personalization.esp.sync_log import RecordOutcome
from personalization.exceptions import SyncError


def drop_root(settings) -> Path:
    return settings.home / "esp_drop"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class FileDropAdapter(Adapter):
    """Writes CSV files for an ESP to pick up."""

    name = "file_drop"
    # It copies the export's files in SQL: it needs the emails, not the contacts' fields
    # nor what earlier syncs wrote.
    reads_contacts = False

    def plan(self, export: ExportView, previous_state: SyncState) -> SyncPlan:
        self._export = export
        segments = []
        for name, seg in sorted(export.segments.items()):
            emails = seg.emails
            added = [e for e in emails if e in seg.added_emails]
            segments.append(SegmentPlan(name, adds=added, removes=sorted(seg.removed_emails),
                                        unchanged=len(emails) - len(added),
                                        holdout=len(seg.holdout_emails)))
        return SyncPlan(self.name, export.ds, self.mode, [], segments, list(export.erasures))

    def apply(self, plan: SyncPlan) -> list[RecordOutcome]:
        export = self._export
        root = drop_root(self.settings)
        final = root / plan.ds.isoformat()
        tmp = root / f".tmp-{plan.ds.isoformat()}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "segments").mkdir(parents=True)
        (tmp / "deltas").mkdir()
        try:
            files = self._write(export, tmp)
            (tmp / "manifest.json").write_text(json.dumps({
                "ds": plan.ds.isoformat(), "source": str(export.path), "mode": plan.mode,
                "counts": plan.counts(),
                "files": {rel: {"sha256": _sha256(tmp / rel), "rows": rows}
                          for rel, rows in files.items()},
            }, indent=2, sort_keys=True))
            old = root / f".old-{plan.ds.isoformat()}-{os.getpid()}"
            if final.exists():
                final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        except (OSError, duckdb.Error) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise SyncError(f"could not write the file drop {final}: {e}") from e
        outcomes = []
        for sp in plan.segments:
            outcomes += [RecordOutcome(sp.segment, e, "add", "ok") for e in sp.adds]
            outcomes += [RecordOutcome(sp.segment, e, "remove", "ok") for e in sp.removes]
        outcomes += [RecordOutcome(ERASURE_LIST, e, "delete", "ok") for e in plan.erasures]
        self.log.record(outcomes)
        return outcomes

    def _write(self, export: ExportView, out: Path) -> dict[str, int]:
        """Copy the export's files minus the holdout, in SQL (no per-row Python), two
        segments at a time (a CSV write keeps one core busy)."""
        con = duckdb.connect(config=self.settings.duckdb_config("sync"))
        try:
            files: dict[str, int] = {}
            for written in map_on_cursors(
                    con, export.segments, lambda cursor, name: self._write_segment(
                        cursor, export.path, name, out)):
                files.update(written)
            erasures = export.path / "erasures.csv"
            query = (f"select email from read_csv('{erasures}', header = true, all_varchar = true)"
                     if erasures.exists() else "select null::varchar as email limit 0")
            files["erasures.csv"] = self._copy(con, query + " order by email", out / "erasures.csv")
        finally:
            con.close()
        return files

    def _write_segment(self, con: duckdb.DuckDBPyConnection, src: Path, name: str,
                       out: Path) -> dict[str, int]:
        """One segment's list and deltas, on `con` (its temp views are the cursor's own)."""
        files: dict[str, int] = {}
        parquet = src / "segments" / f"{name}.parquet"
        rel = (f"read_parquet('{parquet}')" if parquet.exists() else
               f"read_csv('{src / 'segments' / f'{name}.csv'}', header = true)")
        con.execute(f"""create or replace temp view seg as
            select * exclude (is_holdout) from {rel}
            where not coalesce(try_cast(is_holdout as boolean), false)""")
        con.execute(f"""create or replace temp view holdout as
            select lower(trim(email)) as email from {rel}
            where coalesce(try_cast(is_holdout as boolean), false)""")
        files[f"segments/{name}.csv"] = self._copy(con, "select * from seg order by email",
                                                   out / "segments" / f"{name}.csv")
        for kind in ("added", "removed"):
            delta = src / "deltas" / f"{name}.{kind}.csv"
            target = out / "deltas" / f"{name}.{kind}.csv"
            if delta.exists():
                query = (f"select * from read_csv('{delta}', header = true, all_varchar = true)"
                         " where lower(trim(email)) not in (select email from holdout)"
                         if kind == "added" else
                         f"select * from read_csv('{delta}', header = true, all_varchar = true)")
            else:
                query = "select null::varchar as email, null::varchar as unified_id limit 0"
            files[f"deltas/{name}.{kind}.csv"] = self._copy(con, query + " order by email",
                                                            target)
        return files

    @staticmethod
    def _copy(con: duckdb.DuckDBPyConnection, query: str, target: Path) -> int:
        # COPY returns the rows it wrote: no second pass to count them.
        return con.execute(f"copy ({query}) to '{target}' (header, delimiter ',')").fetchone()[0]

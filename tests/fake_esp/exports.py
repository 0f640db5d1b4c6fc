"""Small export fixtures in the layout of docs/architecture.md (`<exports>/<ds>/`)."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

COLUMNS = ["email", "unified_id", "FNAME", "LNAME", "CITY", "FAV_CATEGORY", "RECO_1", "RECO_2",
           "RECO_3", "BEST_HOUR", "VIP", "variant", "is_holdout"]


def contact(i: int, *, holdout: bool = False, city: str = "Berlin", reco: str = "sku-1") -> dict:
    """One export row with hand-readable values."""
    return {"email": f"person{i}@example.com", "unified_id": f"u{i:05d}", "FNAME": f"First{i}",
            "LNAME": f"Last{i}", "CITY": city, "FAV_CATEGORY": "shoes", "RECO_1": reco,
            "RECO_2": "sku-2", "RECO_3": "sku-3", "BEST_HOUR": str(9 + i % 8),
            "VIP": "true" if i % 5 == 0 else "false", "variant": "a" if i % 2 else "b",
            "is_holdout": holdout}


def _table(rows: list[dict], columns: list[str]) -> pa.Table:
    return pa.table({c: [r.get(c) for r in rows] for c in columns})


def write_export(exports_dir: Path, ds: date, segments: dict[str, list[dict]],
                 added: dict[str, list[str]] | None = None,
                 removed: dict[str, list[str]] | None = None,
                 erasures: list[str] | None = None, fmt: str = "parquet",
                 extra_columns: dict[str, list[str]] | None = None,
                 contact_columns: list[str] = ()) -> Path:
    """Write `<exports_dir>/<ds>/` and point `latest` at it.

    `added` defaults to every non-holdout row (a first export); `removed` to nothing.
    `extra_columns` names a segment's own columns (keys its rows carry besides COLUMNS);
    `contact_columns` more contact-level merge tags (in every segment's rows).
    """
    out = exports_dir / ds.isoformat()
    (out / "segments").mkdir(parents=True, exist_ok=True)
    (out / "deltas").mkdir(exist_ok=True)
    manifest = []
    for name, rows in segments.items():
        own = (extra_columns or {}).get(name, [])
        table = _table(rows, COLUMNS[:-2] + list(contact_columns) + own + COLUMNS[-2:])
        if fmt == "parquet":
            pq.write_table(table, out / "segments" / f"{name}.parquet")
        pacsv.write_csv(table, out / "segments" / f"{name}.csv")
        add = (added or {}).get(name)
        if add is None:
            add = [r["email"] for r in rows]
        by_email = {r["email"]: r for r in rows}
        pacsv.write_csv(_table([{"email": e, "unified_id": by_email.get(e, {}).get("unified_id")}
                                for e in add], ["email", "unified_id"]),
                        out / "deltas" / f"{name}.added.csv")
        pacsv.write_csv(_table([{"email": e, "unified_id": None}
                                for e in (removed or {}).get(name, [])],
                               ["email", "unified_id"]),
                        out / "deltas" / f"{name}.removed.csv")
        manifest.append({"name": name, "rows": len(rows), "added": len(add), "extra_columns": own,
                         "removed": len((removed or {}).get(name, []))})
    pacsv.write_csv(pa.table({"email": pa.array(erasures or [], pa.string())}),
                    out / "erasures.csv")
    (out / "manifest.json").write_text(json.dumps({"ds": ds.isoformat(), "segments": manifest}))
    latest = exports_dir / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    os.symlink(out.name, latest)
    return out

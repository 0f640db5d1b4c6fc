"""What a scoring night keeps for the next one, beside its scores under
`<scores_dir>/ds=<ds>/` (so erasure redacts the per-person files with the scores, and a rerun
of a date reads the same earlier night).

Recommendations (recommend.py, viewed.py): per-person inputs with their fingerprints, each
person's product views (as sku numbers, with the numbering: sku_numbers.py), the item
neighbours, and what they were built with. Send hours
(send_hour.py): each person's hour histogram by day and their opens-and-clicks checksum.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb

from personalization.config import Settings
from personalization.privacy.ledger import read_parquet_sql, write_parquet_atomic
from personalization.scoring import recommend, send_hour, viewed
from personalization.scoring.db import delivered_until

RECO_STATE_FILE = "recommendation_state.parquet"
RECO_VIEWS_FILE = "recommendation_views.parquet"
RECO_NEIGHBOURS_FILE = "item_neighbours.parquet"
RECO_CATALOGUE_FILE = "recommendation_catalogue.parquet"
RECO_SKUS_FILE = "recommendation_skus.parquet"
RECO_META_FILE = "recommendation_state.json"
SEND_HOURS_FILE = "send_hour_histograms.parquet"
SEND_SUMS_FILE = "send_hour_sums.parquet"
SEND_META_FILE = "send_hour_state.json"
RECO_FILES = (RECO_STATE_FILE, RECO_VIEWS_FILE, RECO_NEIGHBOURS_FILE, RECO_CATALOGUE_FILE,
              RECO_SKUS_FILE)
SEND_FILES = (SEND_HOURS_FILE, SEND_SUMS_FILE)
ALL_FILES = (RECO_META_FILE, *RECO_FILES, SEND_META_FILE, *SEND_FILES)
KEEP_STATES = 3
NO_HIVE = ", hive_partitioning = false"  # the folder is ds=<ds>: no extra `ds` column


def reco_parameters(settings: Settings) -> dict:
    return {"k": settings.next_best_products_count, "recent_items": recommend.RECENT_ITEMS,
            "neighbours": recommend.NEIGHBOURS, "lookback_days": recommend.LOOKBACK_DAYS,
            "popularity_days": recommend.POPULARITY_DAYS,
            "fallback_depth": recommend.FALLBACK_DEPTH,
            # the layout of the kept files: a night never builds on another layout
            "state": "views as lists of sku numbers by person"}


def _send_parameters() -> dict:
    # `state`: the layout of the kept files; a night never builds on another layout.
    return {"lookback_days": send_hour.LOOKBACK_DAYS, "state": "hours by day"}


def _folders_holding(settings: Settings, names: tuple[str, ...]) -> list[Path]:
    """The nights' folders holding any of these files, oldest first."""
    return sorted((p for p in Path(settings.scores_dir).glob("ds=*")
                   if any((p / name).exists() for name in names)), key=lambda p: p.name)


def _latest_before(ds: date, settings: Settings, marker: str) -> Path | None:
    folders = [p for p in _folders_holding(settings, (marker,)) if p.name[3:] < ds.isoformat()]
    return folders[-1] if folders else None


def _sql(settings: Settings, folder: Path, name: str) -> str:
    return f"select * from {read_parquet_sql(settings, folder / name, NO_HIVE)}"


def previous_reco_state(ds: date, settings: Settings) -> tuple[dict | None, str | None]:
    """The recommendation state the latest earlier night kept, if it may be built on; else
    why not."""
    folder = _latest_before(ds, settings, RECO_META_FILE)
    if folder is None:
        return None, "no earlier night kept a recommendation state"
    meta = json.loads((folder / RECO_META_FILE).read_text())
    age = (ds - date.fromisoformat(meta["neighbours_built_ds"])).days
    if age >= settings.retrain_every_days:
        return None, (f"item neighbours of {meta['neighbours_built_ds']} are {age} days old; "
                      f"retrain_every_days={settings.retrain_every_days}")
    if any(meta.get(k) != v for k, v in reco_parameters(settings).items()):
        return None, "recommendation parameters (or the kept layout) changed"
    if not all((folder / f).exists() for f in RECO_FILES):
        return None, f"{folder.name} lacks its state files"
    return {"meta": meta, "from": folder.name, "since": date.fromisoformat(folder.name[3:]),
            "delivered_until": meta.get("delivered_until"),
            "state_sql": _sql(settings, folder, RECO_STATE_FILE),
            "views_sql": _sql(settings, folder, RECO_VIEWS_FILE),
            "neighbours_sql": _sql(settings, folder, RECO_NEIGHBOURS_FILE),
            "catalogue_sql": _sql(settings, folder, RECO_CATALOGUE_FILE),
            "skus_sql": _sql(settings, folder, RECO_SKUS_FILE)}, None


def previous_send_hour_state(ds: date, settings: Settings) -> dict | None:
    """The send-hour state the latest earlier night kept, if built with tonight's parameters."""
    folder = _latest_before(ds, settings, SEND_META_FILE)
    if folder is None or not all((folder / f).exists() for f in SEND_FILES):
        return None
    meta = json.loads((folder / SEND_META_FILE).read_text())
    if any(meta.get(k) != v for k, v in _send_parameters().items()):
        return None
    return {"from": folder.name, "since": date.fromisoformat(folder.name[3:]),
            "delivered_until": meta.get("delivered_until"),
            "hist_sql": _sql(settings, folder, SEND_HOURS_FILE),
            "sums_sql": _sql(settings, folder, SEND_SUMS_FILE)}


def keep(con: duckdb.DuckDBPyConnection, settings: Settings, folder: Path, reco: str,
         reco_meta: dict, hours: str) -> None:
    """Write tonight's state (the temp tables and view recommend and send_hour leave) into
    `folder`, then drop the state of all but the latest `KEEP_STATES` nights."""
    for query, name in (
            # The per-person files unsorted: nothing reads their order, and sorting
            # everyone's lists cost ≈ 1 CPU s at 1M.
            (f"select * from {reco}_state", RECO_STATE_FILE),
            (f"select * from {reco}_views_state", RECO_VIEWS_FILE),
            (f"select * from {reco}_similar order by sku_a, sku_b", RECO_NEIGHBOURS_FILE),
            (recommend.CATALOGUE_SQL + " order by sku", RECO_CATALOGUE_FILE),
            # the numbers of the kept views' skus (sku_numbers.py)
            (f"select sku, sid from {reco}_skus order by sid", RECO_SKUS_FILE),
            (f"select * from {hours}_hist order by unified_id, activity_on, send_hour",
             SEND_HOURS_FILE),
            (f"select * from {hours}_sums order by unified_id", SEND_SUMS_FILE)):
        _write(con, settings, query, folder / name)
    # What the events held when this state was built: the next night adds what came after
    # (db.events_since_kept_sql).
    loaded = {"delivered_until": delivered_until(con)}
    (folder / RECO_META_FILE).write_text(json.dumps({**reco_meta, **loaded}, indent=2) + "\n")
    (folder / SEND_META_FILE).write_text(
        json.dumps({**_send_parameters(), **loaded}, indent=2) + "\n")
    # The state grows with the persons, not with the nights: keep the latest few (a rerun of
    # one of them still finds the night before it), drop older ones.
    for old in _folders_holding(settings, ALL_FILES)[:-KEEP_STATES]:
        for name in ALL_FILES:
            (old / name).unlink(missing_ok=True)
    viewed.drop_kept(con, reco)
    for table in (f"{reco}_state", f"{reco}_similar", f"{hours}_hist", f"{hours}_sums"):
        con.execute(f"drop table if exists {table}")


def _write(con: duckdb.DuckDBPyConnection, settings: Settings, query: str, path: Path) -> None:
    # Rewritten every night, read by the next one only: the fast zstd level (everyone's
    # views: 2.35 -> 1.85 s at 1M, 99 -> 114 MB).
    write_parquet_atomic(con, settings, query, path, zstd_level=1)

"""benchmarks/run.py's nothing-lost check: every load-log row must add up."""

from __future__ import annotations

import duckdb

from benchmarks.run import _load_log_balance
from personalization.config import load_settings


def _log(settings, table: str, ds: str, rows_in: int, loaded: int, quarantined: int) -> None:
    folder = settings.lake_dir / "load_log" / table / f"ds={ds}"
    folder.mkdir(parents=True)
    duckdb.sql(f"""COPY (SELECT '{table.split('/')[0]}' AS source, '{table.split('/')[1]}' AS table_name,
                       DATE '{ds}' AS ds, 'f' AS source_file, {rows_in}::BIGINT AS rows_in,
                       {loaded}::BIGINT AS rows_loaded, {quarantined}::BIGINT AS rows_quarantined,
                       'loaded' AS status)
                   TO '{folder / "part-0.parquet"}' (FORMAT parquet)""")


def test_load_log_rows_that_do_not_add_up_are_counted(tmp_path):
    settings = load_settings(home=tmp_path / "home", landing_dir=tmp_path / "landing")
    assert _load_log_balance(settings) == {"load_log_rows": 0}
    _log(settings, "shop/orders", "2026-09-01", 10, 8, 2)
    _log(settings, "pixel/events", "2026-09-01", 100, 97, 3)
    assert _load_log_balance(settings) == {
        "load_log_rows": 2, "rows_in": 110, "rows_loaded": 105, "rows_quarantined": 5,
        "rows_not_adding_up": 0}
    _log(settings, "pixel/events", "2026-09-02", 50, 48, 1)  # one line unaccounted for
    balance = _load_log_balance(settings)
    assert balance["load_log_rows"] == 3 and balance["rows_not_adding_up"] == 1

"""Data tests scoped to the recent deliveries (dbt_project/macros/recent_deliveries.sql) stay
real checks: a new row that repeats the key of an old row fails the nightly uniqueness test,
a bad value in the window fails, and with the window off (`data_test_recent_days: 0`, as on
a full refresh) the whole table is checked again (docs/performance.md).

Built with the real extract and dbt on two generated nights; the planted rows go straight
into the loaded table, as a faulty model would write them.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest

from personalization.config import load_settings
from personalization.exceptions import WarehouseError
from personalization.generate import generate
from personalization.pipeline import run_step
from personalization.warehouse import invoke

NIGHT1 = date(2026, 5, 1)
NIGHT2 = NIGHT1 + timedelta(days=1)
ONE_DAY = {"data_test_recent_days": 1}  # night 2's delivery is recent, night 1's is not
TEST = ["test", "--select", "stg_pixel__events", "--indirect-selection", "cautious"]


def _plant(settings, sql: str, params: list) -> None:
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(sql, params)


def _copy_of_a_night1_event(delivered_on: date, new_id: str | None = None) -> tuple[str, list]:
    """Insert a copy of one night-1 event (same event_id unless `new_id`) delivered on a date."""
    sql = ("insert into stg_pixel__events select * replace (coalesce(?, event_id) as event_id, "
           "?::date as delivered_on) from stg_pixel__events where delivered_on = ? "
           "order by event_id limit 1")
    return sql, [new_id, delivered_on, NIGHT1]


def test_scoped_event_tests_check_recent_rows_against_the_whole_table(tmp_path):
    settings = load_settings(home=tmp_path / "home", landing_dir=tmp_path / "landing")
    generate(out=settings.landing_dir, customers=100, days=2, seed=3, start=NIGHT1,
             truth_path=tmp_path / "truth.parquet")
    for ds in (NIGHT1, NIGHT2):
        run_step("extract_pixel", ds, settings)
        invoke(["run", "--select", "stg_pixel__events"], settings, ds)
    invoke(TEST, settings, NIGHT2, extra_vars=ONE_DAY)  # as loaded: every test passes

    # A night-2 row repeating a night-1 event id: the recent row is checked against the old.
    _plant(settings, *_copy_of_a_night1_event(NIGHT2))
    with pytest.raises(WarehouseError, match="unique_in_recent_deliveries_stg_pixel__events_event_id"):
        invoke(TEST, settings, NIGHT2, extra_vars=ONE_DAY)
    _plant(settings, "delete from stg_pixel__events where delivered_on = ? and event_id in "
           "(select event_id from stg_pixel__events where delivered_on = ?)", [NIGHT2, NIGHT1])

    # A bad event type delivered tonight fails the scoped accepted_values test.
    _plant(settings, "update stg_pixel__events set event_type = 'teleport' where event_id = "
           "(select min(event_id) from stg_pixel__events where delivered_on = ?)", [NIGHT2])
    with pytest.raises(WarehouseError, match="accepted_values_stg_pixel__events_event_type"):
        invoke(TEST, settings, NIGHT2, extra_vars=ONE_DAY)
    _plant(settings, "update stg_pixel__events set event_type = 'login' "
           "where event_type = 'teleport'", [])

    # Both copies of a duplicate outside the window: a night does not look (the rows were
    # checked when they landed); with the window off the whole table is checked.
    _plant(settings, *_copy_of_a_night1_event(NIGHT1))
    invoke(TEST, settings, NIGHT2, extra_vars=ONE_DAY)
    with pytest.raises(WarehouseError, match="unique_in_recent_deliveries_stg_pixel__events_event_id"):
        invoke(TEST, settings, NIGHT2, extra_vars={"data_test_recent_days": 0})


def test_two_ids_with_one_event_key_are_two_events(tmp_path):
    """`event_key` is a 64-bit hash of the event id (macros/event_keys.sql): the night's probe
    for ids loaded before and the uniqueness test look keys up, then compare the ids. A
    loaded row whose key equals a new event's (a collision, forced here) neither drops that
    event as already loaded nor fails the test."""
    settings = load_settings(home=tmp_path / "home", landing_dir=tmp_path / "landing")
    generate(out=settings.landing_dir, customers=100, days=2, seed=3, start=NIGHT1,
             truth_path=tmp_path / "truth.parquet")
    run_step("extract_pixel", NIGHT1, settings)
    invoke(["run", "--select", "stg_pixel__events"], settings, NIGHT1)
    run_step("extract_pixel", NIGHT2, settings)
    lake = settings.lake_dir / "raw" / "pixel" / "events" / f"ds={NIGHT2.isoformat()}"
    tonight = duckdb.sql(f"select distinct event_id from read_parquet('{lake}/**/*.parquet') "
                         "where event_id is not null order by event_id").fetchall()
    target = tonight[0][0]
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("insert into stg_pixel__events select * replace ('collider' as event_id, "
                    "hash(?) as event_key) from stg_pixel__events where delivered_on = ? "
                    "order by event_id limit 1", [target, NIGHT1])
    invoke(["run", "--select", "stg_pixel__events"], settings, NIGHT2)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        loaded = con.execute("select event_id from stg_pixel__events where delivered_on = ? "
                             "order by event_id", [NIGHT2]).fetchall()
        keys = con.execute("select count(distinct event_id) from stg_pixel__events "
                           "where event_key = hash(?)", [target]).fetchone()[0]
    assert loaded == tonight and keys == 2
    invoke(TEST, settings, NIGHT2, extra_vars=ONE_DAY)  # no duplicate: two ids

"""Data tests that check a night's rows, not whole tables (docs/performance.md, "Data tests on
the night's rows"), still catch what they guard: the person of customer_events against the
profiles (`relationships_in_recent_deliveries`), the uniqueness of the append-only
identity caches (`unique_combination` with `written_column`) and of the staged orders and
their lines (rewritten per order with the night's delivery).

Two generated nights built by the real nightly steps; each case plants its fault in a copy
of night 2's warehouse, as a faulty model would leave it, and runs the data tests with the
window of night 2's delivery only: night 1's rows are old.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import duckdb
import pytest

from personalization.config import SOURCES, load_settings
from personalization.exceptions import WarehouseError
from personalization.generate import generate
from personalization.lake import partition_file
from personalization.pipeline import run_step
from personalization.warehouse import invoke, tested_nights
from personalization.warehouse.dbt import data_test_window_vars

NIGHT1 = date(2026, 5, 1)
NIGHT2 = NIGHT1 + timedelta(days=1)
ONE_DAY = {"data_test_recent_days": 1}  # night 2's delivery is recent, night 1's is not
WHOLE = {"data_test_recent_days": 0}
RELATIONSHIP = "relationships_in_recent_deliveries_customer_events_unified_id"
UNIQUE_EVENTS = "unique_in_recent_deliveries_stg_pixel__events_event_id"
TEST_EVENTS = ["test", "--select", "test_name:relationships_in_recent_deliveries"]
TEST_CACHE = ["test", "--select", "int_identity__record_blocking_keys,test_name:unique_combination"]


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    """Night 2's settings and a pristine copy of its warehouse file."""
    tmp = tmp_path_factory.mktemp("sliced")
    settings = load_settings(home=tmp / "home", landing_dir=tmp / "landing")
    generate(out=settings.landing_dir, customers=150, days=2, seed=5, start=NIGHT1,
             truth_path=tmp / "truth.parquet")
    for ds in (NIGHT1, NIGHT2):
        for source in SOURCES:
            run_step(f"extract_{source}", ds, settings)
        run_step("build_marts", ds, settings)
    pristine = tmp / "pristine.duckdb"
    shutil.copyfile(settings.warehouse_path, pristine)
    return settings, pristine


@pytest.fixture
def warehouse(nights):
    """Night 2's warehouse as built, restored for every test."""
    settings, pristine = nights
    shutil.copyfile(pristine, settings.warehouse_path)
    return settings


def _sql(settings, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path)) as con:
        return con.execute(sql, params or []).fetchall()


def _old_person(settings) -> str:
    """A person with night-1 events only, whose key pairs night 2 left alone."""
    return _sql(settings, """
        select unified_id from customer_events group by unified_id
        having max(delivered_on) = ? and unified_id is not null
           and unified_id not in (select unified_id from int_events__key_persons
                                  where remapped_on = ? and unified_id is not null)
        order by count(*) desc, unified_id limit 1""", [NIGHT1, NIGHT2])[0][0]


def _drop_profile(settings, person: str) -> None:
    # customer_profiles is a view over int_customers__profiles
    _sql(settings, "delete from int_customers__profiles where unified_id = ?", [person])


def _fails(settings, command: list[str], test: str, extra_vars: dict) -> None:
    with pytest.raises(WarehouseError, match=test):
        invoke(command, settings, NIGHT2, extra_vars=extra_vars)


def test_the_nights_as_built_pass_the_sliced_tests(warehouse):
    invoke(TEST_EVENTS, warehouse, NIGHT2, extra_vars=ONE_DAY)
    invoke(TEST_CACHE, warehouse, NIGHT2, extra_vars=ONE_DAY)


def test_a_new_event_of_an_unknown_person_fails(warehouse):
    _sql(warehouse, "update int_events__resolved set unified_id = 'u_nobody' where event_id = "
                    "(select min(event_id) from int_events__resolved where delivered_on = ?)",
         [NIGHT2])
    _fails(warehouse, TEST_EVENTS, RELATIONSHIP, ONE_DAY)


def test_a_person_merged_away_tonight_who_keeps_old_events_fails(warehouse):
    # Identity absorbed the person into another tonight; the events were not re-mapped. Its
    # key pairs record the move without naming it (as after a second move), so only the
    # merge says whose old events must have moved.
    person = _old_person(warehouse)
    survivor = _sql(warehouse, "select min(unified_id) from customer_profiles "
                               "where unified_id <> ?", [person])[0][0]
    _drop_profile(warehouse, person)
    _sql(warehouse, "update int_events__key_persons set unified_id = ?, previous_unified_id = ?, "
                    "remapped_on = ? where unified_id = ?", [survivor, survivor, NIGHT2, person])
    _sql(warehouse, "insert into identity_merges values (?, ?, ?)", [person, survivor, NIGHT2])
    _fails(warehouse, TEST_EVENTS, RELATIONSHIP, ONE_DAY)


def test_a_person_identity_dropped_tonight_who_keeps_old_events_fails(warehouse):
    # No merge (e.g. a cookie whose records are gone): its key pairs moved to no person.
    person = _old_person(warehouse)
    _drop_profile(warehouse, person)
    _sql(warehouse, "update int_events__key_persons set unified_id = null, "
                    "previous_unified_id = ?, remapped_on = ? where unified_id = ?",
         [person, NIGHT2, person])
    _fails(warehouse, TEST_EVENTS, RELATIONSHIP, ONE_DAY)


def test_profiles_losing_a_person_identity_still_has_fails(warehouse):
    # Nothing moved: the person's old events and key pairs are as they were.
    _drop_profile(warehouse, _old_person(warehouse))
    _fails(warehouse, TEST_EVENTS, RELATIONSHIP, ONE_DAY)


def test_an_old_event_with_an_unknown_person_fails_only_the_whole_check(warehouse):
    # A row no night wrote (not in the window, no person moved): a night does not look; the
    # first build, --full-refresh and the weekly full check do.
    _sql(warehouse, "update int_events__resolved set unified_id = 'u_nobody' where event_id = "
                    "(select min(event_id) from int_events__resolved where delivered_on = ?)",
         [NIGHT1])
    invoke(TEST_EVENTS, warehouse, NIGHT2, extra_vars=ONE_DAY)
    _fails(warehouse, TEST_EVENTS, RELATIONSHIP, WHOLE)


def test_a_cache_key_written_tonight_that_repeats_an_old_one_fails(warehouse):
    old = "select * replace (?::date as computed_on) from int_identity__record_blocking_keys " \
          "where computed_on = ? order by all limit 1"
    _sql(warehouse, f"insert into int_identity__record_blocking_keys {old}", [NIGHT2, NIGHT1])
    _fails(warehouse, TEST_CACHE, "unique_combination_int_identity__record_blocking_keys", ONE_DAY)


def test_an_old_cache_duplicate_fails_only_the_whole_check(warehouse):
    old = "select * from int_identity__record_blocking_keys where computed_on = ? " \
          "order by all limit 1"
    _sql(warehouse, f"insert into int_identity__record_blocking_keys {old}", [NIGHT1])
    invoke(TEST_CACHE, warehouse, NIGHT2, extra_vars=ONE_DAY)
    _fails(warehouse, TEST_CACHE, "unique_combination_int_identity__record_blocking_keys", WHOLE)


ORDER_TESTS = [("stg_shop__orders", "unique_in_recent_deliveries_stg_shop__orders_order_id"),
               ("stg_shop__order_items", "unique_combination_stg_shop__order_items_order_id")]


@pytest.mark.parametrize(("table", "test"), ORDER_TESTS)
def test_an_order_delivered_tonight_that_repeats_an_old_one_fails(warehouse, table, test):
    # As if the incremental insert had kept the order's earlier rows beside tonight's version.
    _sql(warehouse, f"insert into {table} select * replace (?::date as delivered_on) from "
                    f"{table} where delivered_on = ? order by all limit 1", [NIGHT2, NIGHT1])
    _fails(warehouse, ["test", "--select", table], test, ONE_DAY)


@pytest.mark.parametrize(("table", "test"), ORDER_TESTS)
def test_an_old_order_duplicate_fails_only_the_whole_check(warehouse, table, test):
    _sql(warehouse, f"insert into {table} select * from {table} where delivered_on = ? "
                    "order by all limit 1", [NIGHT1])
    invoke(["test", "--select", table], warehouse, NIGHT2, extra_vars=ONE_DAY)
    _fails(warehouse, ["test", "--select", table], test, WHOLE)


def test_the_first_build_and_the_weekly_night_check_every_row(warehouse, tmp_path):
    settings = warehouse  # holds the event tables; NIGHT2 is a Saturday
    weekly = settings.model_copy(update={"data_tests_whole_weekday": NIGHT2.isoweekday()})
    never = settings.model_copy(update={"data_tests_whole_weekday": 0})
    after_night2 = {"data_tests_passed_through": NIGHT2.isoformat()}
    assert data_test_window_vars(NIGHT2, settings) == after_night2
    assert data_test_window_vars(NIGHT2, weekly) == WHOLE
    assert data_test_window_vars(NIGHT2 + timedelta(days=1), weekly) == after_night2
    assert data_test_window_vars(NIGHT2, never) == after_night2
    first = load_settings(home=tmp_path / "empty")
    assert data_test_window_vars(NIGHT2, first) == WHOLE


def test_a_night_checks_what_was_written_since_the_last_passing_night(warehouse):
    # Both nights passed: night 3 checks night 3's rows, and a rerun of night 2 night 2's
    # (it rewrites them), not the deliveries before (the first build checked those).
    night3 = NIGHT2 + timedelta(days=1)  # a Sunday: the weekly whole check is switched off
    settings = warehouse.model_copy(update={"data_tests_whole_weekday": 0})
    assert tested_nights.passed_through(night3, settings) == NIGHT2
    assert tested_nights.passed_through(NIGHT2, settings) == NIGHT2
    assert tested_nights.passed_through(NIGHT1 - timedelta(days=1), settings) is None
    invoke(["compile", "--select", "stg_pixel__events", "--indirect-selection", "cautious"],
           settings, night3, extra_vars=data_test_window_vars(night3, settings))
    compiled = (warehouse.dbt_target_dir / "compiled" / "personalization" / "dbt_project" / "models"
                / "staging" / "_staging.yml" / f"{UNIQUE_EVENTS}.sql").read_text()
    assert f"delivered_on > date '{NIGHT2}'" in compiled


def test_a_failed_rerun_leaves_its_night_to_the_next_nights_tests(warehouse):
    # The rerun of night 2 fails (a corrupt lake file): night 2's pass is gone, so the next
    # night checks night 2's rows again, not only its own.
    events = partition_file(warehouse, "pixel/events", NIGHT2)
    good = events.read_bytes()
    events.write_bytes(b"not parquet")
    try:
        with pytest.raises(WarehouseError):
            run_step("build_marts", NIGHT2, warehouse)
    finally:
        events.write_bytes(good)
    monday = NIGHT2 + timedelta(days=2)
    assert tested_nights.passed_through(monday, warehouse) == NIGHT1
    assert data_test_window_vars(monday, warehouse) == {"data_tests_passed_through": NIGHT1.isoformat()}


def test_the_tested_nights_are_read_without_writing_and_a_broken_warehouse_is_one_error(tmp_path):
    settings = load_settings(home=tmp_path / "home")
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    duckdb.connect(str(settings.warehouse_path)).close()  # a warehouse before the first record
    assert tested_nights.passed_through(NIGHT2, settings) is None
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select count(*) from information_schema.schemata "
                           "where schema_name = 'pipeline_state'").fetchone()[0] == 0
    settings.warehouse_path.write_bytes(b"not a duckdb file" * 100)
    with pytest.raises(WarehouseError, match="cannot read or record the tested nights in"):
        tested_nights.passed_through(NIGHT2, settings)

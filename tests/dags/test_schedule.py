"""Which day a run processes: the business-day rule, the timetable, catch-up and backfill."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from personalization.orchestration.schedule import (
    START_DATE,
    BusinessDayNotOverError,
    business_day,
    ensure_day_over,
    last_day_over,
    nightly_timetable,
)

AIRFLOW = Path(sys.executable).parent / "airflow"


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("logical_date", "run_after", "expected"), [
    # scheduled: the run created just after midnight ending 03-10 processes 03-10
    (_utc(2026, 3, 10), _utc(2026, 3, 11), date(2026, 3, 10)),
    # a manual trigger for a date (00:00) processes that date, whenever it is triggered
    (_utc(2026, 3, 10), _utc(2026, 5, 1, 14, 5), date(2026, 3, 10)),
    # the trigger form's default "now": the last day that has ended
    (_utc(2026, 3, 11, 9, 30), _utc(2026, 3, 11, 9, 30), date(2026, 3, 10)),
    (_utc(2026, 3, 11, 0, 0, 1), _utc(2026, 3, 11, 0, 0, 1), date(2026, 3, 10)),
    # no logical date at all: the last day that had ended when the run was allowed to start
    (None, _utc(2026, 3, 11, 9, 30), date(2026, 3, 10)),
    # another time zone's midnight is a moment in UTC, not a day boundary
    (datetime.fromisoformat("2026-03-11T00:00:00+01:00"), _utc(2026, 3, 11), date(2026, 3, 9)),
])
def test_business_day_of_a_run(logical_date, run_after, expected):
    assert business_day(logical_date, run_after) == expected


def test_a_day_that_has_not_ended_is_refused_with_what_to_do_instead():
    ensure_day_over(date(2026, 3, 10), _utc(2026, 3, 11))  # ended exactly now: fine
    with pytest.raises(BusinessDayNotOverError) as e:
        ensure_day_over(date(2026, 3, 11), _utc(2026, 3, 11, 9, 30))
    message = str(e.value)
    assert "2026-03-11 has not ended yet" in message and "2026-03-12T00:00Z" in message
    assert "logical date 2026-03-10 or earlier" in message and "\n" not in message
    assert last_day_over(_utc(2026, 3, 11, 9, 30)) == date(2026, 3, 10)


def _core_timetable():
    from airflow.serialization.encoders import coerce_to_core_timetable

    return coerce_to_core_timetable(nightly_timetable())


def test_without_catch_up_the_first_run_is_the_last_day_that_has_ended():
    from airflow.timetables.base import TimeRestriction

    now = datetime.now(UTC)
    info = _core_timetable().next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=START_DATE, latest=None, catchup=False))
    assert info.logical_date.date() in (last_day_over(now), last_day_over(now) - timedelta(days=1))
    assert info.data_interval.end - info.data_interval.start == timedelta(days=1)
    assert info.run_after == info.data_interval.end <= now  # its day is over


def test_with_catch_up_every_day_gets_one_run_after_it_ends():
    from airflow.timetables.base import TimeRestriction

    timetable = _core_timetable()
    restriction = TimeRestriction(earliest=_utc(2026, 3, 1), latest=None, catchup=True)
    infos, last = [], None
    for _ in range(3):
        info = timetable.next_dagrun_info(last_automated_data_interval=last,
                                          restriction=restriction)
        infos.append(info)
        last = info.data_interval
    assert [(i.logical_date, i.data_interval.end, i.run_after) for i in infos] == [
        (_utc(2026, 3, d), _utc(2026, 3, d + 1), _utc(2026, 3, d + 1)) for d in (1, 2, 3)]
    # a manual trigger at a date: its ds is that date (the data interval Airflow infers for
    # it is the day before, which no task reads)
    manual = timetable.infer_manual_data_interval(run_after=_utc(2026, 3, 10))
    assert business_day(_utc(2026, 3, 10), _utc(2026, 3, 12)) == date(2026, 3, 10)
    assert manual.end == _utc(2026, 3, 10)


def _airflow(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW__CORE__UNIT_TEST_MODE"}
    return subprocess.run([str(AIRFLOW), *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.slow
def test_backfill_create_makes_one_run_per_day_in_order_and_none_for_today(dags_airflow_db):
    """`airflow backfill create` as the runbook says, against the real metadata DB."""
    from airflow.models.backfill import Backfill, BackfillDagRun
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    proc = _airflow("dags", "reserialize")
    assert proc.returncode == 0, proc.stderr[-2000:]
    today = datetime.now(UTC).date()
    start = today - timedelta(days=2)
    proc = _airflow("backfill", "create", "--dag-id", "personalization_nightly",
                    "--from-date", start.isoformat(), "--to-date", today.isoformat(),
                    "--max-active-runs", "1")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    with create_session() as session:
        backfill = session.query(Backfill).filter(
            Backfill.dag_id == "personalization_nightly").one()
        runs = session.query(DagRun).filter(DagRun.backfill_id == backfill.id).all()
        days = sorted((r.logical_date.date(), r.data_interval_end - r.data_interval_start)
                      for r in runs)
        # one run per day that has ended, none for today (its files cannot exist yet)
        assert days == [(start, timedelta(days=1)), (start + timedelta(days=1), timedelta(days=1))]
        assert backfill.max_active_runs == 1  # dates one at a time, in order
        # leave the DB as the other tests expect it
        session.query(BackfillDagRun).filter(BackfillDagRun.backfill_id == backfill.id).delete()
        for run in runs:
            session.delete(run)
        session.delete(backfill)

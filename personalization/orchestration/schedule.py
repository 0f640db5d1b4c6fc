"""When the nightly run runs, and which business day (`ds`) a run processes.

The landing folder of day D (`<landing>/<source>/D/`) can only be complete once D has ended.
So the nightly DAG uses a data-interval timetable: the run for D covers [D 00:00, D+1 00:00)
UTC, is created when that interval ends (just after midnight), and its logical date, hence
`ds`, is D. No run is ever created for a day that has not ended; backfills skip it too.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from personalization.exceptions import PersonalizationError

TIMEZONE = "UTC"
START_DATE = datetime(2026, 1, 1, tzinfo=UTC)
NIGHTLY_CRON = "0 0 * * *"


class BusinessDayNotOverError(PersonalizationError):
    """A run asks for a day whose landing files cannot exist yet."""


def nightly_timetable():
    """Daily data intervals, midnight to midnight UTC: the run after midnight processes yesterday."""
    from airflow.sdk import CronDataIntervalTimetable

    return CronDataIntervalTimetable(NIGHTLY_CRON, timezone=TIMEZONE)


def business_day(logical_date: datetime | None, run_after: datetime) -> date:
    """The day a run processes.

    - A logical date at midnight (every scheduled and backfill run, and a manual trigger for
      a date) names the day: 2026-03-10T00:00 processes 2026-03-10.
    - A logical date with a time of day (the trigger form's default "now") and a run without
      a logical date process the last day that had ended by then: triggered 2026-03-11T09:30,
      they process 2026-03-10.

    Args:
        logical_date: the run's logical date (aware), or None.
        run_after: when the run was allowed to start (aware); used when there is no logical date.
    """
    moment = (logical_date or run_after).astimezone(UTC)
    if logical_date is not None and moment.time() == time(0):
        return moment.date()
    return moment.date() - timedelta(days=1)


def ensure_day_over(ds: date, now: datetime) -> None:
    """Raise BusinessDayNotOverError if `ds` has not ended at `now` (its files cannot exist yet)."""
    end = datetime.combine(ds + timedelta(days=1), time(0), tzinfo=UTC)
    if now < end:
        raise BusinessDayNotOverError(
            f"business day {ds} has not ended yet (it ends {end:%Y-%m-%dT%H:%MZ}), so its landing "
            f"files cannot exist: trigger with the logical date {last_day_over(now)} or earlier "
            "(at 00:00), or without a logical date to process the last day that has ended")


def last_day_over(now: datetime) -> date:
    """The latest business day that has ended at `now`."""
    return now.astimezone(UTC).date() - timedelta(days=1)

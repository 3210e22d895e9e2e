"""When runs are due: Airflow's data-interval semantics for cron, presets and timedeltas."""

from __future__ import annotations

import datetime as dt

from spinner.sdk.timetable import DataInterval, Timetable

UTC = dt.UTC
START = dt.datetime(2026, 1, 1, tzinfo=UTC)


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_daily_first_run_covers_the_first_day_and_is_due_when_it_ends() -> None:
    tt = Timetable("@daily")
    info = tt.next_dagrun_info(last_data_interval_end=None, start_date=START, catchup=True, now=at(2026, 1, 1, 12))
    assert info == DataInterval(at(2026, 1, 1), at(2026, 1, 2))
    assert info.end > at(2026, 1, 1, 12)  # not due yet


def test_catchup_walks_every_interval_and_no_catchup_jumps_to_the_latest() -> None:
    tt = Timetable("0 * * * *")
    now = at(2026, 1, 1, 5, 30)
    first = tt.next_dagrun_info(last_data_interval_end=None, start_date=START, catchup=True, now=now)
    assert first == DataInterval(at(2026, 1, 1, 0), at(2026, 1, 1, 1))
    following = tt.next_dagrun_info(last_data_interval_end=first.end, start_date=START, catchup=True, now=now)
    assert following == DataInterval(at(2026, 1, 1, 1), at(2026, 1, 1, 2))
    latest = tt.next_dagrun_info(last_data_interval_end=None, start_date=START, catchup=False, now=now)
    assert latest == DataInterval(at(2026, 1, 1, 4), at(2026, 1, 1, 5))


def test_timedelta_schedule() -> None:
    tt = Timetable(dt.timedelta(minutes=30))
    info = tt.next_dagrun_info(last_data_interval_end=None, start_date=START, catchup=True, now=at(2026, 1, 1, 2))
    assert info == DataInterval(START, START + dt.timedelta(minutes=30))


def test_once_and_none() -> None:
    once = Timetable("@once")
    assert once.next_dagrun_info(last_data_interval_end=None, start_date=START, catchup=False, now=START) == (
        DataInterval(START, START)
    )
    assert once.next_dagrun_info(last_data_interval_end=START, start_date=START, catchup=False, now=START) is None
    assert (
        Timetable(None).next_dagrun_info(last_data_interval_end=None, start_date=START, catchup=True, now=START) is None
    )


def test_manual_run_of_a_cron_dag_covers_the_last_complete_interval() -> None:
    assert Timetable("@daily").infer_manual_data_interval(at(2026, 3, 5, 10)) == DataInterval(
        at(2026, 3, 4), at(2026, 3, 5)
    )
    assert Timetable(None).infer_manual_data_interval(at(2026, 3, 5, 10)) == DataInterval(
        at(2026, 3, 5, 10), at(2026, 3, 5, 10)
    )

"""When runs are due: Airflow's data-interval semantics for cron, presets and timedeltas."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

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


# --- time zones: cron on the DAG zone's wall clock, across both daylight-saving transitions ------------

PARIS = ZoneInfo("Europe/Paris")  # 2026: CET -> CEST on Mar 29 at 02:00, back on Oct 25 at 03:00
NEW_YORK = ZoneInfo("America/New_York")  # 2026: EST -> EDT on Mar 8 at 02:00, back on Nov 1 at 02:00
FAR_FUTURE = at(2030, 1, 1)


def walk(tt: Timetable, start: dt.datetime, n: int, now: dt.datetime = FAR_FUTURE) -> list[DataInterval]:
    """The first n intervals a catching-up DAG gets, as the scheduler asks for them."""
    out: list[DataInterval] = []
    last = None
    for _ in range(n):
        info = tt.next_dagrun_info(last_data_interval_end=last, start_date=start, catchup=True, now=now)
        assert info is not None
        out.append(info)
        last = info.end
    return out


def local(values: list[DataInterval], zone: ZoneInfo) -> list[str]:
    return [f"{i.start.astimezone(zone):%m-%d %H:%M} -> {i.end.astimezone(zone):%m-%d %H:%M}" for i in values]


def test_paris_daily_stays_at_two_local_across_spring_forward() -> None:
    tt = Timetable("0 2 * * *", "Europe/Paris")
    got = walk(tt, dt.datetime(2026, 3, 27, 2, tzinfo=PARIS), 4)
    # 02:00 does not exist on Mar 29: that run moves forward by the gap (03:00), then 02:00 again.
    assert local(got, PARIS) == [
        "03-27 02:00 -> 03-28 02:00",
        "03-28 02:00 -> 03-29 03:00",
        "03-29 03:00 -> 03-30 02:00",
        "03-30 02:00 -> 03-31 02:00",
    ]
    assert [i.start for i in got] == [at(2026, 3, 27, 1), at(2026, 3, 28, 1), at(2026, 3, 29, 1), at(2026, 3, 30, 0)]
    assert all(i.start.tzinfo == UTC for i in got)


def test_paris_daily_stays_at_two_local_across_fall_back() -> None:
    tt = Timetable("0 2 * * *", "Europe/Paris")
    got = walk(tt, dt.datetime(2026, 10, 23, 2, tzinfo=PARIS), 4)
    assert local(got, PARIS) == [
        "10-23 02:00 -> 10-24 02:00",
        "10-24 02:00 -> 10-25 02:00",
        "10-25 02:00 -> 10-26 02:00",
        "10-26 02:00 -> 10-27 02:00",
    ]
    # 02:00 happens twice on Oct 25: the run is at the second one (CET), so that day lasts 25 hours.
    assert got[1].end == at(2026, 10, 25, 1)
    assert got[1].end - got[1].start == dt.timedelta(hours=25)
    assert got[2].end - got[2].start == dt.timedelta(hours=24)


def test_a_wall_time_missing_on_the_spring_forward_day_moves_forward_by_the_gap() -> None:
    tt = Timetable("30 2 * * *", "Europe/Paris")
    got = walk(tt, dt.datetime(2026, 3, 28, 2, 30, tzinfo=PARIS), 3)
    assert local(got, PARIS) == [
        "03-28 02:30 -> 03-29 03:30",
        "03-29 03:30 -> 03-30 02:30",
        "03-30 02:30 -> 03-31 02:30",
    ]


def test_paris_hourly_steps_in_absolute_hours_across_both_transitions() -> None:
    tt = Timetable("0 * * * *", "Europe/Paris")
    spring = walk(tt, dt.datetime(2026, 3, 29, 0, tzinfo=PARIS), 4)
    assert [i.start for i in spring] == [
        at(2026, 3, 28, 23),
        at(2026, 3, 29, 0),
        at(2026, 3, 29, 1),
        at(2026, 3, 29, 2),
    ]
    assert local(spring, PARIS)[1] == "03-29 01:00 -> 03-29 03:00"  # 02:00 local never happens
    fall = walk(tt, dt.datetime(2026, 10, 25, 1, tzinfo=PARIS), 4)
    assert all(i.end - i.start == dt.timedelta(hours=1) for i in spring + fall)
    assert [i.start for i in fall] == [
        at(2026, 10, 24, 23),
        at(2026, 10, 25, 0),
        at(2026, 10, 25, 1),
        at(2026, 10, 25, 2),
    ]
    # 02:00 local comes twice, an hour apart: one run each, none skipped or repeated in UTC.
    assert [f"{i.start.astimezone(PARIS):%H:%M}" for i in fall] == ["01:00", "02:00", "02:00", "03:00"]


def test_new_york_daily_and_hourly_across_both_transitions() -> None:
    daily = Timetable("0 2 * * *", "America/New_York")
    spring = walk(daily, dt.datetime(2026, 3, 6, 2, tzinfo=NEW_YORK), 4)
    assert local(spring, NEW_YORK) == [
        "03-06 02:00 -> 03-07 02:00",
        "03-07 02:00 -> 03-08 03:00",
        "03-08 03:00 -> 03-09 02:00",
        "03-09 02:00 -> 03-10 02:00",
    ]
    fall = walk(daily, dt.datetime(2026, 10, 30, 2, tzinfo=NEW_YORK), 3)
    assert local(fall, NEW_YORK) == [
        "10-30 02:00 -> 10-31 02:00",
        "10-31 02:00 -> 11-01 02:00",
        "11-01 02:00 -> 11-02 02:00",
    ]
    assert fall[1].end - fall[1].start == dt.timedelta(hours=25)
    hourly = Timetable("@hourly", "America/New_York")
    got = walk(hourly, dt.datetime(2026, 11, 1, 0, tzinfo=NEW_YORK), 4)
    assert all(i.end - i.start == dt.timedelta(hours=1) for i in got)
    assert [f"{i.start.astimezone(NEW_YORK):%H:%M}" for i in got] == ["00:00", "01:00", "01:00", "02:00"]


def test_without_catchup_the_latest_interval_is_in_local_time() -> None:
    tt = Timetable("0 2 * * *", "Europe/Paris")
    start = dt.datetime(2026, 1, 1, 2, tzinfo=PARIS)
    info = tt.next_dagrun_info(last_data_interval_end=None, start_date=start, catchup=False, now=at(2026, 3, 29, 5))
    assert info is not None
    assert local([info], PARIS) == ["03-28 02:00 -> 03-29 03:00"]
    info = tt.next_dagrun_info(last_data_interval_end=None, start_date=start, catchup=False, now=at(2026, 10, 26, 5))
    assert info is not None
    assert local([info], PARIS) == ["10-25 02:00 -> 10-26 02:00"]
    hourly = Timetable("0 * * * *", "America/New_York")
    got = hourly.next_dagrun_info(
        last_data_interval_end=None, start_date=start, catchup=False, now=at(2026, 3, 8, 7, 30)
    )
    assert got == DataInterval(at(2026, 3, 8, 6), at(2026, 3, 8, 7))  # 01:00 EST -> 03:00 EDT


def test_timedelta_schedules_stay_absolute_in_any_zone() -> None:
    tt = Timetable(dt.timedelta(hours=24), "Europe/Paris")
    got = walk(tt, dt.datetime(2026, 3, 28, 2, tzinfo=PARIS), 2)
    assert [i.end - i.start for i in got] == [dt.timedelta(hours=24)] * 2
    assert local(got, PARIS) == ["03-28 02:00 -> 03-29 03:00", "03-29 03:00 -> 03-30 03:00"]


def test_manual_runs_and_previous_points_use_the_zone() -> None:
    tt = Timetable("0 2 * * *", "Europe/Paris")
    assert tt.infer_manual_data_interval(at(2026, 3, 30, 12)) == DataInterval(at(2026, 3, 29, 1), at(2026, 3, 30, 0))
    assert tt.previous_point(at(2026, 3, 30, 0)) == at(2026, 3, 29, 1)


def test_a_dag_takes_its_zone_from_start_date_or_timezone_and_serializes_it() -> None:
    from spinner import DAG
    from spinner.sdk.serialization import deserialize_dag, serialize_dag

    with DAG("paris", tier=1, schedule="0 2 * * *", start_date=dt.datetime(2026, 1, 1, 2, tzinfo=PARIS)) as paris:
        pass
    assert paris.timezone_name == "Europe/Paris"
    back = deserialize_dag(serialize_dag(paris))
    assert back.timezone_name == "Europe/Paris"
    assert back.timetable.infer_manual_data_interval(at(2026, 7, 2, 12)).end == at(2026, 7, 2, 0)
    naive = DAG("ny", tier=1, schedule="@daily", start_date=dt.datetime(2026, 1, 1), timezone="America/New_York")
    assert naive.timezone_name == "America/New_York"
    assert naive.start_date == at(2026, 1, 1, 5)  # a naive start_date is a wall time in the DAG's zone
    assert DAG("utc", tier=1, start_date=START).timezone_name == "UTC"


def test_an_unknown_zone_is_a_definition_error() -> None:
    import pytest

    from spinner import DAG
    from spinner.sdk.exceptions import DagDefinitionError

    with pytest.raises(DagDefinitionError, match=r"DAG 'bad'.*unknown time zone 'Mars/Olympus'"):
        DAG("bad", tier=1, schedule="@daily", timezone="Mars/Olympus")


def test_new_york_hourly_across_spring_forward_and_paris_hourly_without_catchup() -> None:
    hourly = Timetable("0 * * * *", "America/New_York")
    got = walk(hourly, dt.datetime(2026, 3, 8, 0, tzinfo=NEW_YORK), 3)
    assert [i.start for i in got] == [at(2026, 3, 8, 5), at(2026, 3, 8, 6), at(2026, 3, 8, 7)]
    assert [f"{i.end.astimezone(NEW_YORK):%H:%M}" for i in got] == ["01:00", "03:00", "04:00"]
    paris = Timetable("@hourly", "Europe/Paris")
    start = dt.datetime(2026, 1, 1, tzinfo=PARIS)
    latest = paris.next_dagrun_info(
        last_data_interval_end=None, start_date=start, catchup=False, now=at(2026, 10, 25, 1, 30)
    )
    assert latest == DataInterval(at(2026, 10, 25, 0), at(2026, 10, 25, 1))  # 02:00 CEST -> 02:00 CET


def test_a_start_date_on_a_shifted_point_is_that_point() -> None:
    tt = Timetable("30 2 * * *", "Europe/Paris")
    shifted = dt.datetime(2026, 3, 29, 3, 30, tzinfo=PARIS)  # where 02:30 moved on the spring-forward day
    first = tt.next_dagrun_info(last_data_interval_end=None, start_date=shifted, catchup=True, now=FAR_FUTURE)
    assert first == DataInterval(at(2026, 3, 29, 1, 30), at(2026, 3, 30, 0, 30))
    early = tt.next_dagrun_info(
        last_data_interval_end=None, start_date=dt.datetime(2026, 3, 29, 3, 10, tzinfo=PARIS), catchup=True,
        now=FAR_FUTURE,
    )  # fmt: skip
    assert early == first  # 03:10 is before the shifted 03:30 point: the first run starts there
    # The first occurrence of an ambiguous 02:30 is not a point; the second one is.
    fall = Timetable("30 2 * * *", "Europe/Paris")
    assert fall.infer_manual_data_interval(at(2026, 10, 25, 0, 45)).end == at(2026, 10, 24, 0, 30)
    assert fall.infer_manual_data_interval(at(2026, 10, 25, 1, 30)).end == at(2026, 10, 25, 1, 30)

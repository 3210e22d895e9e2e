"""Schedules: when a DAG's runs are due and which data interval each covers (Airflow's semantics).

A scheduled run's logical date is the start of its data interval, and it runs once
the interval has ended. Manual runs of a cron or preset schedule cover the last
complete interval before their logical date (as Airflow's CronDataIntervalTimetable);
manual runs of a timedelta schedule or of no schedule have an empty interval at the
logical date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from croniter import croniter

PRESETS: dict[str, str | None] = {
    "@once": None,
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

Schedule = str | dt.timedelta | None
TIMEDELTA_PREFIX = "timedelta:"


@dataclass(frozen=True)
class DataInterval:
    start: dt.datetime
    end: dt.datetime


def validate_schedule(schedule: Schedule) -> None:
    """Raises ValueError with a reason when the schedule is not usable."""
    if schedule is None:
        return
    if isinstance(schedule, dt.timedelta):
        if schedule <= dt.timedelta(0):
            raise ValueError(f"a timedelta schedule must be positive, got {schedule}")
        return
    if not isinstance(schedule, str):
        raise ValueError(f"schedule must be a cron string, a preset, a timedelta or None, not {schedule!r}")
    if schedule in PRESETS:
        return
    if schedule.startswith("@"):
        raise ValueError(f"unknown schedule preset {schedule!r}; use one of {', '.join(PRESETS)}")
    if not croniter.is_valid(schedule):
        raise ValueError(f"invalid cron expression {schedule!r}")


def schedule_to_str(schedule: Schedule) -> str | None:
    if isinstance(schedule, dt.timedelta):
        return f"{TIMEDELTA_PREFIX}{schedule.total_seconds()!r}"
    return schedule


def schedule_from_str(value: str | None) -> Schedule:
    if value is not None and value.startswith(TIMEDELTA_PREFIX):
        return dt.timedelta(seconds=float(value[len(TIMEDELTA_PREFIX) :]))
    return value


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class Timetable:
    def __init__(self, schedule: Schedule) -> None:
        validate_schedule(schedule)
        self.schedule = schedule
        self._cron = PRESETS.get(schedule, schedule) if isinstance(schedule, str) else None

    @property
    def periodic(self) -> bool:
        return self.schedule is not None and self.schedule != "@once"

    def _next(self, after: dt.datetime) -> dt.datetime:
        """The first schedule point strictly after `after`."""
        if isinstance(self.schedule, dt.timedelta):
            return after + self.schedule
        assert self._cron is not None
        value: dt.datetime = croniter(self._cron, after).get_next(dt.datetime)
        return _aware(value)

    def _prev(self, before: dt.datetime) -> dt.datetime:
        """The last schedule point at or before `before`."""
        assert self._cron is not None
        if croniter.match(self._cron, before):
            return before
        value: dt.datetime = croniter(self._cron, before).get_prev(dt.datetime)
        return _aware(value)

    def _align(self, start: dt.datetime) -> dt.datetime:
        """The first schedule point at or after start."""
        if isinstance(self.schedule, dt.timedelta):
            return start
        assert self._cron is not None
        on_minute = start.second == 0 and start.microsecond == 0
        if on_minute and croniter.match(self._cron, start):
            return start
        return self._next(start)

    def next_dagrun_info(
        self,
        *,
        last_data_interval_end: dt.datetime | None,
        start_date: dt.datetime | None,
        catchup: bool,
        now: dt.datetime,
    ) -> DataInterval | None:
        """The next run's data interval, or None when no run will ever come.

        The caller creates the run once `interval.end <= now`.
        """
        if self.schedule is None:
            return None
        if self.schedule == "@once":
            if last_data_interval_end is not None or start_date is None:
                return None
            return DataInterval(start_date, start_date)
        if start_date is None:
            return None
        if last_data_interval_end is not None:
            start = last_data_interval_end
        else:
            start = self._align(start_date)
        if not catchup:
            # Only the latest complete interval (or the one in progress): skip the backlog.
            if isinstance(self.schedule, dt.timedelta):
                latest_start = now - self.schedule
            else:
                latest_end = self._prev(now)
                latest_start = self._prev(latest_end - dt.timedelta(microseconds=1))
            if latest_start > start:
                start = latest_start
        return DataInterval(start, self._next(start))

    def infer_manual_data_interval(self, logical_date: dt.datetime) -> DataInterval:
        if self._cron is None or self.schedule == "@once":
            return DataInterval(logical_date, logical_date)
        end = self._prev(logical_date)
        return DataInterval(self._prev(end - dt.timedelta(microseconds=1)), end)

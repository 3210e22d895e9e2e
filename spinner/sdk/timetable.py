"""Schedules: when a DAG's runs are due and which data interval each covers (Airflow's semantics).

A scheduled run's logical date is the start of its data interval, and it runs once
the interval has ended. Manual runs of a cron or preset schedule cover the last
complete interval before their logical date (as Airflow's CronDataIntervalTimetable);
manual runs of a timedelta schedule or of no schedule have an empty interval at the
logical date.

Time zones (Airflow's rules): a cron schedule is evaluated on the wall clock of the DAG's
zone, so "0 2 * * *" in Europe/Paris stays at 02:00 local across both daylight-saving
transitions. A wall time that does not exist (02:30 on a spring-forward day) moves forward
by the gap (03:30); one that occurs twice (a fall-back day) is its second occurrence. A cron
that fires every hour ("0 * * * *") steps in absolute time instead, so it neither skips nor
repeats an hour. Timedelta schedules are absolute. Every time returned is in UTC.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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


# Daylight-saving shifts are at most two hours: how far around a time to look for shifted points.
_SHIFT_WINDOW = dt.timedelta(hours=3)
_OFFSET = re.compile(r"^([+-])(\d\d):(\d\d)$")


def zone_from_name(name: str) -> dt.tzinfo:
    """ "UTC", an IANA name ("Europe/Paris") or a fixed offset ("+02:00"); ValueError when unknown."""
    if name in ("UTC", "utc", "Z"):
        return dt.UTC
    match = _OFFSET.match(name)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        return dt.timezone(sign * dt.timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as 'Europe/Paris'") from None


def zone_name(zone: dt.tzinfo | None) -> str:
    """The name a zone is serialized under (the inverse of zone_from_name)."""
    if zone is None or zone is dt.UTC:
        return "UTC"
    if isinstance(zone, ZoneInfo):
        return zone.key
    offset = zone.utcoffset(None)
    if offset is None:
        raise ValueError(f"time zone {zone!r} has no name and no fixed offset; use zoneinfo.ZoneInfo")
    if offset == dt.timedelta(0):
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def localize(naive: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """A wall-clock time in `zone` as UTC: a time in a spring-forward gap moves forward by the gap,
    an ambiguous one (fall back) is its second occurrence (Airflow's make_aware)."""
    second = naive.replace(tzinfo=zone, fold=1)
    if second.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) == naive:
        return second.astimezone(dt.UTC)
    # Not a real wall time: fold=0 reads it with the offset before the gap, i.e. shifted forward.
    return naive.replace(tzinfo=zone, fold=0).astimezone(dt.UTC)


@functools.lru_cache(maxsize=4096)
def _covers_every_hour(cron: str) -> bool:
    """Fires in every hour of the day (Airflow's test): such crons step in absolute time across DST."""
    hours = croniter(cron).expanded[1]
    return hours == ["*"] or len(set(hours)) == 24


class Timetable:
    def __init__(self, schedule: Schedule, timezone: dt.tzinfo | str | None = None) -> None:
        validate_schedule(schedule)
        self.schedule = schedule
        self.timezone: dt.tzinfo = zone_from_name(timezone) if isinstance(timezone, str) else (timezone or dt.UTC)
        self._cron = PRESETS.get(schedule, schedule) if isinstance(schedule, str) else None
        self._hourly = self._cron is not None and _covers_every_hour(self._cron)
        # Only zones with daylight saving shift wall times; UTC and fixed offsets need no look-around.
        self._window = _SHIFT_WINDOW if isinstance(self.timezone, ZoneInfo) else dt.timedelta(0)

    def _local(self, value: dt.datetime) -> dt.datetime:
        return _aware(value).astimezone(self.timezone).replace(tzinfo=None)

    def _cron_next(self, after: dt.datetime) -> dt.datetime:
        """The first cron point strictly after `after`, in UTC."""
        assert self._cron is not None
        after = _aware(after).astimezone(dt.UTC)
        naive = self._local(after)
        if self._hourly:
            step: dt.datetime = croniter(self._cron, naive).get_next(dt.datetime)
            return after + (step - naive)
        # Wall times shifted out of a gap can land after `after` though their wall time is before it:
        # walk from a little earlier and take the first point that is really later.
        points = croniter(self._cron, naive - self._window_at(after))
        while True:
            candidate = localize(points.get_next(dt.datetime), self.timezone)
            if candidate > after:
                return candidate

    def _cron_prev(self, before: dt.datetime) -> dt.datetime:
        """The last cron point strictly before `before`, in UTC."""
        assert self._cron is not None
        before = _aware(before).astimezone(dt.UTC)
        naive = self._local(before)
        if self._hourly:
            back: dt.datetime = croniter(self._cron, naive).get_prev(dt.datetime)
            return before - (naive - back)
        points = croniter(self._cron, naive + self._window_at(before))
        while True:
            candidate = localize(points.get_prev(dt.datetime), self.timezone)
            if candidate < before:
                return candidate

    def _window_at(self, value: dt.datetime) -> dt.timedelta:
        """How far around `value` shifted points may hide: only near a change of the zone's UTC offset."""
        if not self._window:
            return self._window
        before = (value - self._window).astimezone(self.timezone).utcoffset()
        after = (value + self._window).astimezone(self.timezone).utcoffset()
        return self._window if before != after else dt.timedelta(0)

    def _is_point(self, value: dt.datetime) -> bool:
        assert self._cron is not None
        value = _aware(value).astimezone(dt.UTC)
        naive = self._local(value)
        if naive.second == 0 and naive.microsecond == 0 and croniter.match(self._cron, naive):
            # An hourly cron steps in absolute time: every matching wall time is a point. Others are at
            # the wall time's localized instant (the second one of an ambiguous time).
            return self._hourly or localize(naive, self.timezone) == value
        if self._window_at(value):  # a point moved forward out of a gap does not match its wall time
            return self._cron_prev(self._cron_next(value)) == value
        return False

    @property
    def periodic(self) -> bool:
        return self.schedule is not None and self.schedule != "@once"

    def _next(self, after: dt.datetime) -> dt.datetime:
        """The first schedule point strictly after `after`."""
        if isinstance(self.schedule, dt.timedelta):
            return _aware(after).astimezone(dt.UTC) + self.schedule  # absolute, not wall-clock, arithmetic
        return self._cron_next(after)

    def _prev(self, before: dt.datetime) -> dt.datetime:
        """The last schedule point at or before `before`."""
        if self._is_point(before):
            return _aware(before).astimezone(dt.UTC)
        return self._cron_prev(before)

    def _align(self, start: dt.datetime) -> dt.datetime:
        """The first schedule point at or after start."""
        if isinstance(self.schedule, dt.timedelta):
            return _aware(start).astimezone(dt.UTC)
        if self._is_point(start):
            return _aware(start).astimezone(dt.UTC)
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
            once = _aware(start_date).astimezone(dt.UTC)
            return DataInterval(once, once)
        if start_date is None:
            return None
        if last_data_interval_end is not None:
            start = _aware(last_data_interval_end).astimezone(dt.UTC)
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

    def previous_point(self, logical_date: dt.datetime) -> dt.datetime:
        """The schedule point before a logical date (Airflow's prev_execution_date of a scheduled run)."""
        if isinstance(self.schedule, dt.timedelta):
            return _aware(logical_date).astimezone(dt.UTC) - self.schedule
        if self._cron is None or self.schedule == "@once":
            return logical_date
        return self._cron_prev(logical_date)

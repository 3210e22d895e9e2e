"""The time-derived names of a task's context (Airflow's): macros, prev_ds / next_ds, execution_date,
ts_nodash_with_tz, and what the previous successful run covered (from the executor, not the database)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from spinner.sdk.macros import make_macros

if TYPE_CHECKING:
    from spinner.sdk.dag import DAG


@dataclass(frozen=True)
class PreviousSuccess:
    """The latest successful run of the DAG before this one (None fields: there is none)."""

    logical_date: dt.datetime | None = None
    data_interval_start: dt.datetime | None = None
    data_interval_end: dt.datetime | None = None
    start_date: dt.datetime | None = None
    end_date: dt.datetime | None = None


def _ds(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d") if value is not None else None


def _nodash(value: str | None) -> str | None:
    return value.replace("-", "") if value is not None else None


def time_context(
    dag: DAG,
    *,
    logical_date: dt.datetime,
    data_interval_end: dt.datetime,
    run_type: str,
    previous: PreviousSuccess | None,
) -> dict[str, Any]:
    """Names added to build_context's. A manual run's prev and next are its own logical date (Airflow's rule)."""
    if run_type == "manual":
        prev_date, next_date = logical_date, logical_date
    else:
        prev_date = dag.timetable.previous_point(logical_date)
        next_date = data_interval_end if dag.timetable.periodic else logical_date
    prev_ds, next_ds = _ds(prev_date), _ds(next_date)
    ts = logical_date.isoformat()
    previous = previous or PreviousSuccess()
    return {
        "macros": make_macros(),
        "execution_date": logical_date,
        "prev_execution_date": prev_date,
        "next_execution_date": next_date,
        "prev_ds": prev_ds,
        "prev_ds_nodash": _nodash(prev_ds),
        "next_ds": next_ds,
        "next_ds_nodash": _nodash(next_ds),
        "yesterday_ds": _ds(logical_date - dt.timedelta(days=1)),
        "yesterday_ds_nodash": _nodash(_ds(logical_date - dt.timedelta(days=1))),
        "tomorrow_ds": _ds(logical_date + dt.timedelta(days=1)),
        "tomorrow_ds_nodash": _nodash(_ds(logical_date + dt.timedelta(days=1))),
        "ts_nodash_with_tz": ts.replace("-", "").replace(":", ""),
        "prev_data_interval_start_success": previous.data_interval_start,
        "prev_data_interval_end_success": previous.data_interval_end,
        "prev_start_date_success": previous.start_date,
        "prev_end_date_success": previous.end_date,
        "prev_execution_date_success": previous.logical_date,
    }

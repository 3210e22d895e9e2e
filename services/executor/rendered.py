"""What a runner reads and writes about templates through the executor: a try's rendered fields,
and the latest successful run before its own (prev_*_success in the task's context).

Database functions take the caller's session and never commit.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.executor.backends.base import TryKey
from spinner.db.models import DagRun, RenderedTaskInstanceFields, TaskInstance

# The runner cuts each field at 16 KiB; this bounds a whole request (many fields, JSON escapes).
MAX_RENDERED_JSON = 4 * 1024 * 1024


class RenderedRefused(Exception):
    """The rendered fields cannot be stored for this try (not its running try, or not a JSON object)."""


@dataclass(frozen=True)
class PreviousSuccess:
    logical_date: str = ""
    data_interval_start: str = ""
    data_interval_end: str = ""
    start_date: str = ""
    end_date: str = ""


def check_fields_json(fields_json: str) -> str:
    """The request's JSON, canonical; RenderedRefused when it is too large or not an object."""
    if len(fields_json) > MAX_RENDERED_JSON:
        raise RenderedRefused(f"rendered fields are {len(fields_json)} characters; at most {MAX_RENDERED_JSON}")
    try:
        value = json.loads(fields_json)
    except ValueError as e:
        raise RenderedRefused(f"fields_json is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise RenderedRefused("fields_json must be a JSON object of field name -> rendered value")
    return json.dumps(value, sort_keys=True)


async def save_rendered(session: AsyncSession, key: TryKey, fields_json: str, now: dt.datetime) -> None:
    """Stores the try's rendered fields (again: replaced), only while it is this try and running."""
    ti = await session.get(TaskInstance, (key.dag_id, key.run_id, key.task_id, key.map_index), populate_existing=True)
    if ti is None or ti.try_number != key.try_number or ti.state != "running":
        raise RenderedRefused("the task instance is not running this try")
    row = await session.get(
        RenderedTaskInstanceFields, (key.dag_id, key.run_id, key.task_id, key.map_index, key.try_number)
    )
    if row is None:
        session.add(
            RenderedTaskInstanceFields(
                dag_id=key.dag_id, run_id=key.run_id, task_id=key.task_id, map_index=key.map_index,
                try_number=key.try_number,
                rendered_fields=fields_json, rendered_at=now,
            )
        )  # fmt: skip
    else:
        row.rendered_fields, row.rendered_at = fields_json, now


class PreviousSuccessCache:
    """Answers for a run's tries from one read: a burst of a run's task starts asks the database once.

    An answer may be up to `ttl` old: a run that succeeds meanwhile shows up in the next read.
    """

    def __init__(self, clock: Callable[[], dt.datetime], ttl: float = 10.0, size: int = 10_000) -> None:
        self._clock = clock
        self._ttl = dt.timedelta(seconds=ttl)
        self._size = size
        self._entries: OrderedDict[tuple[str, str], tuple[dt.datetime, PreviousSuccess]] = OrderedDict()

    def get(self, dag_id: str, run_id: str) -> PreviousSuccess | None:
        entry = self._entries.get((dag_id, run_id))
        if entry is None or self._clock() - entry[0] > self._ttl:
            return None
        return entry[1]

    def put(self, dag_id: str, run_id: str, value: PreviousSuccess) -> None:
        self._entries[(dag_id, run_id)] = (self._clock(), value)
        self._entries.move_to_end((dag_id, run_id))
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


def _iso(value: dt.datetime | None) -> str:
    return value.isoformat() if value is not None else ""


async def previous_success(session: AsyncSession, dag_id: str, run_id: str) -> PreviousSuccess:
    """The DAG's latest successful run with a logical date before this run's (Airflow's prev_*_success)."""
    this = select(DagRun.logical_date).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id).scalar_subquery()
    q = (
        select(DagRun)
        .where(DagRun.dag_id == dag_id, DagRun.state == "success", DagRun.logical_date < this)
        .order_by(DagRun.logical_date.desc())
        .limit(1)
    )
    run = (await session.execute(q)).scalar_one_or_none()
    if run is None:
        return PreviousSuccess()
    return PreviousSuccess(
        logical_date=_iso(run.logical_date),
        data_interval_start=_iso(run.data_interval_start),
        data_interval_end=_iso(run.data_interval_end),
        start_date=_iso(run.start_date),
        end_date=_iso(run.end_date),
    )

"""Database reads of the logs service: where a try whose log is followed has got to. Each takes the
caller's session, only reads, and never commits."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spinner.db.models import DagCallback, TaskInstance
from spinner.tasklog import LogId


@dataclass(frozen=True)
class TaskProgress:
    """The task instance's current try, as the database has it."""

    state: str | None
    try_number: int
    reschedule_at: dt.datetime | None  # set while a sensor waits for its next poke (docs/adr/0006)


async def task_progress(session: AsyncSession, key: LogId) -> TaskProgress | None:
    """The task instance of `key` (its instance of a mapped task); None when there is no such row."""
    ti = TaskInstance
    q = select(ti.state, ti.try_number, ti.reschedule_at).where(
        ti.dag_id == key.dag_id, ti.run_id == key.run_id, ti.task_id == key.task_id, ti.map_index == key.map_index
    )
    row = (await session.execute(q)).one_or_none()
    return TaskProgress(row[0], int(row[1] or 0), row[2]) if row is not None else None


async def callback_state(session: AsyncSession, key: LogId) -> str | None:
    """The state of the DAG callback whose process writes `key`'s log (its id is the key's try_number,
    spinner/db/callbacks.py); None when there is no such callback of that run."""
    cb = DagCallback
    q = select(cb.state).where(cb.id == key.try_number, cb.dag_id == key.dag_id, cb.run_id == key.run_id)
    return (await session.execute(q)).scalar_one_or_none()

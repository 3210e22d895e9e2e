"""Database functions of the executor. Each takes the caller's session and never commits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.executor.backends.base import PreviousTry, TryKey
from spinner.db import task_instances
from spinner.db.models import DagRun, PartitionLease, TaskInstance


async def get_ti(session: AsyncSession, key: TryKey) -> TaskInstance | None:
    return await session.get(TaskInstance, (key.dag_id, key.run_id, key.task_id, key.map_index), populate_existing=True)


async def get_run(session: AsyncSession, dag_id: str, run_id: str) -> DagRun | None:
    q = select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
    return (await session.execute(q)).scalar_one_or_none()


async def lease_epoch(session: AsyncSession, partition: str) -> int | None:
    q = select(PartitionLease.epoch).where(PartitionLease.partition == partition)
    value = (await session.execute(q)).scalar_one_or_none()
    return int(value) if value is not None else None


async def guarded_update(
    session: AsyncSession, key: TryKey, *, expected_states: tuple[str, ...], values: dict[str, Any]
) -> bool:
    """Moves the try only if it is still this try in one of the expected states."""
    return await task_instances.guarded_update(
        session,
        dag_id=key.dag_id,
        run_id=key.run_id,
        task_id=key.task_id,
        try_number=key.try_number,
        expected_states=expected_states,
        values=values,
        map_index=key.map_index,
    )


async def running_tries(session: AsyncSession, executor: str) -> list[PreviousTry]:
    """Tries this executor (by name) started that are still running, as the database has them."""
    ti = TaskInstance
    q = select(
        ti.dag_id, ti.run_id, ti.task_id, ti.try_number, ti.reschedule_count, ti.map_index, ti.hostname, ti.pid,
        ti.start_date,
    ).where(ti.state == "running", ti.executor == executor)  # fmt: skip
    return [
        PreviousTry(
            TryKey(r[0], r[1], r[2], int(r[3]), int(r[4] or 0), map_index=int(r[5])),
            hostname=r[6] or "",
            pid=r[7],
            start_date=r[8],
        )
        for r in (await session.execute(q)).all()
    ]


@dataclass(frozen=True)
class StateRequest:
    """The run of `dag_id` at `logical_date`; with a task_id, that task instance of it."""

    dag_id: str
    logical_date: dt.datetime
    task_id: str = ""


@dataclass(frozen=True)
class StateAnswer:
    found: bool
    state: str = ""
    run_id: str = ""


async def task_state(session: AsyncSession, request: StateRequest) -> StateAnswer:
    q = select(DagRun.run_id, DagRun.state).where(
        DagRun.dag_id == request.dag_id, DagRun.logical_date == request.logical_date
    )
    run = (await session.execute(q)).first()
    if run is None:
        return StateAnswer(False)
    if not request.task_id:
        return StateAnswer(True, str(run[1] or ""), str(run[0]))
    ti = TaskInstance
    state_q = select(ti.state).where(ti.dag_id == request.dag_id, ti.run_id == run[0], ti.task_id == request.task_id)
    states = [str(r[0] or "") for r in (await session.execute(state_q)).all()]
    if not states:
        return StateAnswer(False, "", str(run[0]))
    return StateAnswer(True, instances_state(states), str(run[0]))


def instances_state(states: Sequence[str]) -> str:
    """One state for a task's instances (a mapped task has many, docs/adr/0007): theirs when they agree;
    failed when any failed; success when all ended in success or skipped; else running (not done yet)."""
    if len(set(states)) == 1:
        return states[0]
    if any(s in ("failed", "upstream_failed") for s in states):
        return "failed"
    if all(s in ("success", "skipped") for s in states):
        return "success"
    return "running"

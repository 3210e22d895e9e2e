"""Database functions of the executor. Each takes the caller's session and never commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.executor.backends.base import TryKey
from spinner.db.models import DagRun, PartitionLease, TaskInstance, TaskInstanceHistory


async def get_ti(session: AsyncSession, key: TryKey) -> TaskInstance | None:
    return await session.get(TaskInstance, (key.dag_id, key.run_id, key.task_id), populate_existing=True)


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
    result = await session.execute(
        update(TaskInstance)
        .where(
            TaskInstance.dag_id == key.dag_id,
            TaskInstance.run_id == key.run_id,
            TaskInstance.task_id == key.task_id,
            TaskInstance.try_number == key.try_number,
            TaskInstance.state.in_(expected_states),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def add_history(session: AsyncSession, key: TryKey) -> None:
    ti = await get_ti(session, key)
    if ti is None:
        return
    session.add(
        TaskInstanceHistory(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            try_number=ti.try_number,
            state=ti.state or "",
            start_date=ti.start_date,
            end_date=ti.end_date,
            duration=ti.duration,
            hostname=ti.hostname,
            error=ti.error,
        )
    )

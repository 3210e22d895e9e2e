"""Read queries of the gateway. Each takes the caller's session and never commits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from spinner.db.models import (
    DagModel,
    DagRun,
    ImportError_,
    PartitionLease,
    Pool,
    SerializedDagModel,
    TaskInstance,
    TaskInstanceHistory,
)


async def list_dags(session: AsyncSession, limit: int, offset: int) -> tuple[Sequence[DagModel], int]:
    base = select(DagModel).where(DagModel.is_active.is_(True))
    total = (await session.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    rows = (await session.execute(base.order_by(DagModel.dag_id).limit(limit).offset(offset))).scalars().all()
    return rows, int(total)


async def get_dag(session: AsyncSession, dag_id: str) -> DagModel | None:
    q = select(DagModel).where(DagModel.dag_id == dag_id, DagModel.is_active.is_(True))
    return (await session.execute(q)).scalar_one_or_none()


async def serialized(session: AsyncSession, dag_id: str) -> SerializedDagModel | None:
    return await session.get(SerializedDagModel, dag_id)


async def list_runs(session: AsyncSession, dag_id: str, limit: int) -> Sequence[DagRun]:
    q = select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.logical_date.desc(), DagRun.id.desc())
    return (await session.execute(q.limit(limit))).scalars().all()


async def get_run(session: AsyncSession, dag_id: str, run_id: str) -> DagRun | None:
    q = select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
    return (await session.execute(q)).scalar_one_or_none()


async def recent_runs(session: AsyncSession, dag_ids: Sequence[str], per_dag: int) -> dict[str, list[DagRun]]:
    """The newest `per_dag` runs of each DAG, in one query."""
    if not dag_ids:
        return {}
    ranked = (
        select(
            DagRun.id,
            func.row_number()
            .over(partition_by=DagRun.dag_id, order_by=(DagRun.logical_date.desc(), DagRun.id.desc()))
            .label("rn"),
        )
        .where(DagRun.dag_id.in_(list(dag_ids)))
        .subquery()
    )
    q = (
        select(DagRun)
        .join(ranked, ranked.c.id == DagRun.id)
        .where(ranked.c.rn <= per_dag)
        .order_by(DagRun.dag_id, DagRun.logical_date.desc())
    )
    out: dict[str, list[DagRun]] = {d: [] for d in dag_ids}
    for run in (await session.execute(q)).scalars():
        out[run.dag_id].append(run)
    return out


async def task_instances(session: AsyncSession, dag_id: str, run_ids: Sequence[str]) -> Sequence[TaskInstance]:
    if not run_ids:
        return []
    q = select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id.in_(list(run_ids)))
    return (await session.execute(q)).scalars().all()


async def task_instance(session: AsyncSession, dag_id: str, run_id: str, task_id: str) -> TaskInstance | None:
    return await session.get(TaskInstance, (dag_id, run_id, task_id))


async def tries(session: AsyncSession, dag_id: str, run_id: str, task_id: str) -> Sequence[TaskInstanceHistory]:
    q = (
        select(TaskInstanceHistory)
        .where(
            TaskInstanceHistory.dag_id == dag_id,
            TaskInstanceHistory.run_id == run_id,
            TaskInstanceHistory.task_id == task_id,
        )
        .order_by(TaskInstanceHistory.try_number)
    )
    return (await session.execute(q)).scalars().all()


async def import_errors(session: AsyncSession) -> Sequence[ImportError_]:
    q = select(ImportError_).order_by(ImportError_.partition, ImportError_.filename)
    return (await session.execute(q)).scalars().all()


async def lease_address(session: AsyncSession, partition: str, now: dt.datetime) -> str | None:
    q = select(PartitionLease.address).where(PartitionLease.partition == partition, PartitionLease.expires_at >= now)
    value = (await session.execute(q)).scalar_one_or_none()
    return str(value) if value else None


async def pools(session: AsyncSession) -> list[tuple[Pool, int]]:
    """Every pool with the number of its slots in use."""
    used = dict(
        (
            await session.execute(
                select(TaskInstance.pool, func.count())
                .where(TaskInstance.state.in_(("queued", "running")))
                .group_by(TaskInstance.pool)
            )
        ).all()
    )
    rows = (await session.execute(select(Pool).order_by(Pool.name))).scalars().all()
    return [(p, int(used.get(p.name, 0))) for p in rows]


async def upsert_pool(session: AsyncSession, name: str, slots: int, description: str) -> None:
    pool = await session.get(Pool, name)
    if pool is None:
        session.add(Pool(name=name, slots=slots, description=description))
    else:
        pool.slots, pool.description = slots, description

"""Read queries of the gateway. Each takes the caller's session and never commits."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from spinner.db.models import (
    AuditLog,
    DagModel,
    DagRun,
    ImportError_,
    Pool,
    SerializedDagModel,
    TaskInstance,
    TaskInstanceHistory,
    XCom,
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


async def recent_run_states(
    session: AsyncSession, dag_ids: Sequence[str], per_dag: int
) -> dict[str, list[tuple[str, str]]]:
    """(run_id, state) of the newest `per_dag` runs of each DAG, newest first, in one query of columns only."""
    if not dag_ids:
        return {}
    ranked = (
        select(
            DagRun.dag_id,
            DagRun.run_id,
            DagRun.state,
            DagRun.logical_date,
            func.row_number()
            .over(partition_by=DagRun.dag_id, order_by=(DagRun.logical_date.desc(), DagRun.id.desc()))
            .label("rn"),
        )
        .where(DagRun.dag_id.in_(list(dag_ids)))
        .subquery()
    )
    q = (
        select(ranked.c.dag_id, ranked.c.run_id, ranked.c.state)
        .where(ranked.c.rn <= per_dag)
        .order_by(ranked.c.dag_id, ranked.c.logical_date.desc())
    )
    out: dict[str, list[tuple[str, str]]] = {d: [] for d in dag_ids}
    for dag_id, run_id, state in (await session.execute(q)).all():
        out[dag_id].append((run_id, state))
    return out


async def task_instances(session: AsyncSession, dag_id: str, run_ids: Sequence[str]) -> Sequence[TaskInstance]:
    if not run_ids:
        return []
    q = select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id.in_(list(run_ids)))
    return (await session.execute(q)).scalars().all()


async def task_instance(
    session: AsyncSession, dag_id: str, run_id: str, task_id: str, map_index: int = -1
) -> TaskInstance | None:
    return await session.get(TaskInstance, (dag_id, run_id, task_id, map_index))


async def tries(
    session: AsyncSession, dag_id: str, run_id: str, task_id: str, map_index: int = -1
) -> Sequence[TaskInstanceHistory]:
    q = (
        select(TaskInstanceHistory)
        .where(
            TaskInstanceHistory.dag_id == dag_id,
            TaskInstanceHistory.run_id == run_id,
            TaskInstanceHistory.task_id == task_id,
            TaskInstanceHistory.map_index == map_index,
        )
        .order_by(TaskInstanceHistory.try_number)
    )
    return (await session.execute(q)).scalars().all()


async def map_indexes(session: AsyncSession, dag_id: str, run_id: str, task_ids: Sequence[str]) -> dict[str, list[int]]:
    """The map_index of every task instance these tasks have in the run, in order (-1 only: unmapped or
    not expanded yet); a task with no instance is left out. Columns only, one query."""
    if not task_ids:
        return {}
    q = (
        select(TaskInstance.task_id, TaskInstance.map_index)
        .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id.in_(list(task_ids)))
        .order_by(TaskInstance.task_id, TaskInstance.map_index)
    )
    out: dict[str, list[int]] = {}
    for task_id, map_index in (await session.execute(q)).all():
        out.setdefault(task_id, []).append(int(map_index))
    return out


async def xcoms(session: AsyncSession, dag_id: str, run_id: str, task_id: str, map_index: int | None) -> Sequence[XCom]:
    """A task's XComs by map_index and key: one instance's, or with map_index None every instance's."""
    q = select(XCom).where(XCom.dag_id == dag_id, XCom.run_id == run_id, XCom.task_id == task_id)
    if map_index is not None:
        q = q.where(XCom.map_index == map_index)
    return (await session.execute(q.order_by(XCom.map_index, XCom.key))).scalars().all()


async def dags_by_file(session: AsyncSession, filelocs: Sequence[str]) -> dict[str, set[str]]:
    """The DAG ids each file defines (files with none are left out)."""
    out: dict[str, set[str]] = {}
    wanted = list(set(filelocs))
    for start in range(0, len(wanted), 500):
        q = select(DagModel.fileloc, DagModel.dag_id).where(DagModel.fileloc.in_(wanted[start : start + 500]))
        for fileloc, dag_id in (await session.execute(q)).all():
            out.setdefault(fileloc, set()).add(dag_id)
    return out


async def import_errors(session: AsyncSession) -> Sequence[ImportError_]:
    q = select(ImportError_).order_by(ImportError_.partition, ImportError_.filename)
    return (await session.execute(q)).scalars().all()


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


# --- listings with filters, audit -----------------------------------------------------------


@dataclass(frozen=True)
class DagFilter:
    """What the DAG list may be narrowed to; None means any."""

    search: str | None = None
    tier: int | None = None
    partition: str | None = None
    tag: str | None = None
    owner: str | None = None
    paused: bool | None = None
    failing: bool | None = None


def _latest_run_failed() -> Any:
    """DAG ids whose newest run failed."""
    newest = select(DagRun.dag_id, func.max(DagRun.logical_date).label("latest")).group_by(DagRun.dag_id).subquery()
    return (
        select(DagRun.dag_id)
        .join(newest, (newest.c.dag_id == DagRun.dag_id) & (newest.c.latest == DagRun.logical_date))
        .where(DagRun.state == "failed")
    )


async def filtered_dags(
    session: AsyncSession, f: DagFilter, readable: frozenset[str] | None, limit: int, offset: int
) -> tuple[Sequence[DagModel], int]:
    """Active DAGs matching the filter among those the user may read (None: every DAG)."""
    q = select(DagModel).where(DagModel.is_active.is_(True))
    if readable is not None:
        if not readable:
            return [], 0
        q = q.where(DagModel.dag_id.in_(sorted(readable)))
    if f.search:
        # Any case, on SQLite and on MySQL's binary collation alike; the user's % and _ are literal.
        text = f.search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{text}%"
        q = q.where(
            func.lower(DagModel.dag_id).like(pattern, escape="\\")
            | func.lower(DagModel.description).like(pattern, escape="\\")
            | func.lower(DagModel.owner).like(pattern, escape="\\")
        )
    if f.tier is not None:
        q = q.where(DagModel.tier == f.tier)
    if f.partition:
        q = q.where(DagModel.partition == f.partition)
    if f.owner:
        q = q.where(DagModel.owner == f.owner)
    if f.tag:
        # Tags are a JSON list: match the quoted element in its text form, on SQLite and MySQL alike.
        tag = json.dumps(f.tag)[1:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        q = q.where(cast(DagModel.tags, String).like(f'%"{tag}"%', escape="\\"))
    if f.paused is not None:
        q = q.where(DagModel.is_paused.is_(f.paused))
    if f.failing is not None:
        failing = DagModel.dag_id.in_(_latest_run_failed())
        q = q.where(failing if f.failing else ~failing)
    total = (await session.execute(select(func.count()).select_from(q.subquery()))).scalar_one()
    rows = (await session.execute(q.order_by(DagModel.dag_id).limit(limit).offset(offset))).scalars().all()
    return rows, int(total)


async def dag_facets(session: AsyncSession, readable: frozenset[str] | None) -> dict[str, list[Any]]:
    """The values the DAG list can be filtered by, from the DAGs in `readable` (None: every DAG) only."""
    if readable is not None and not readable:
        return {"partition": [], "owner": [], "tag": []}
    active: ColumnElement[bool] = DagModel.is_active.is_(True)
    if readable is not None:
        active = and_(active, DagModel.dag_id.in_(sorted(readable)))
    partitions = (await session.execute(select(DagModel.partition).where(active).distinct())).scalars().all()
    owners = (await session.execute(select(DagModel.owner).where(active).distinct())).scalars().all()
    tags: set[str] = set()
    for row in (await session.execute(select(DagModel.tags).where(active).distinct())).scalars():
        tags.update(str(t) for t in row or [])
    return {"partition": sorted(partitions), "owner": sorted(o for o in owners if o), "tag": sorted(tags)}


async def add_audit(session: AsyncSession, entry: AuditLog) -> None:
    session.add(entry)


@dataclass(frozen=True)
class AuditFilter:
    dag_id: str | None = None
    username: str | None = None
    action: str | None = None
    outcome: str | None = None


async def audit_entries(
    session: AsyncSession,
    f: AuditFilter,
    readable: frozenset[str] | None,
    me: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[AuditLog], int]:
    """Newest first. With `me` set (not an admin): entries on DAGs the user may read, and their own."""
    q = select(AuditLog)
    if me is not None:
        mine = AuditLog.username == me
        if readable is None:
            q = q.where(AuditLog.dag_id.is_not(None) | mine)
        elif readable:
            q = q.where(AuditLog.dag_id.in_(sorted(readable)) | mine)
        else:
            q = q.where(mine)
    if f.dag_id:
        q = q.where(AuditLog.dag_id == f.dag_id)
    if f.username:
        q = q.where(AuditLog.username == f.username)
    if f.action:
        q = q.where(AuditLog.action == f.action)
    if f.outcome:
        q = q.where(AuditLog.outcome == f.outcome)
    total = (await session.execute(select(func.count()).select_from(q.subquery()))).scalar_one()
    rows = (
        (await session.execute(q.order_by(AuditLog.ts.desc(), AuditLog.id.desc()).limit(limit).offset(offset)))
        .scalars()
        .all()
    )
    return rows, int(total)

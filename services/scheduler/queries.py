"""Database functions of the scheduler. Each takes the caller's session and never commits."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from spinner.db import task_instances
from spinner.db.models import (
    ACTIVE_RUN_STATES,
    DagCode,
    DagModel,
    DagRun,
    ImportError_,
    PartitionLease,
    Pool,
    SerializedDagModel,
    TaskInstance,
)
from spinner.sdk.serialization import dag_hash

# --- parsing results -------------------------------------------------------------------


async def dag_owner(session: AsyncSession, dag_id: str) -> tuple[str, str] | None:
    row = (
        await session.execute(
            select(DagModel.partition, DagModel.fileloc).where(DagModel.dag_id == dag_id, DagModel.is_active.is_(True))
        )
    ).first()
    return (row[0], row[1]) if row else None


async def deactivate_file(session: AsyncSession, partition: str, fileloc: str, keep: Sequence[str] = ()) -> None:
    stmt = update(DagModel).where(DagModel.partition == partition, DagModel.fileloc == fileloc)
    if keep:
        stmt = stmt.where(DagModel.dag_id.not_in(list(keep)))
    await session.execute(stmt.values(is_active=False, next_dagrun=None))


async def clear_import_errors(session: AsyncSession, partition: str, fileloc: str) -> None:
    await session.execute(
        delete(ImportError_).where(ImportError_.partition == partition, ImportError_.filename == fileloc)
    )


async def add_import_error(
    session: AsyncSession, partition: str, fileloc: str, stacktrace: str, now: dt.datetime
) -> None:
    session.add(ImportError_(partition=partition, filename=fileloc, stacktrace=stacktrace, timestamp=now))


async def upsert_dag(
    session: AsyncSession,
    partition: str,
    fileloc: str,
    data: dict[str, Any],
    version: str,
    now: dt.datetime,
) -> bool:
    """Writes the DAG row and, when its hash changed, the serialized DAG. True when it changed."""
    dag_id = data["dag_id"]
    new_hash = dag_hash(data)
    fields = {
        "partition": partition,
        "fileloc": fileloc,
        "tier": int(data["tier"]),
        "schedule": data.get("schedule"),
        "is_active": True,
        "owner": str(data.get("owner") or ""),
        "description": str(data.get("description") or ""),
        "tags": list(data.get("tags") or []),
        "max_active_runs": int(data.get("max_active_runs") or 16),
        "max_active_tasks": int(data.get("max_active_tasks") or 16),
        "bundle_version": version,
        "last_parsed_at": now,
    }
    dag = await session.get(DagModel, dag_id)
    if dag is None:
        session.add(DagModel(dag_id=dag_id, is_paused=False, **fields))
    else:
        for key, value in fields.items():
            setattr(dag, key, value)
    ser = await session.get(SerializedDagModel, dag_id)
    if ser is not None and ser.dag_hash == new_hash and ser.fileloc == fileloc:
        return False
    values = {
        "partition": partition,
        "fileloc": fileloc,
        "data": data,
        "dag_hash": new_hash,
        "bundle_version": version,
        "updated_at": now,
    }
    if ser is None:
        session.add(SerializedDagModel(dag_id=dag_id, **values))
    else:
        for key, value in values.items():
            setattr(ser, key, value)
    await session.flush()
    return True


async def upsert_code(session: AsyncSession, fileloc: str, source: str, now: dt.datetime) -> None:
    key = hashlib.sha256(fileloc.encode()).hexdigest()
    row = await session.get(DagCode, key)
    if row is None:
        session.add(DagCode(fileloc_hash=key, fileloc=fileloc, source_code=source, updated_at=now))
    elif row.source_code != source:
        row.source_code = source
        row.updated_at = now


async def set_bundle_version(session: AsyncSession, partition: str, version: str) -> None:
    await session.execute(
        update(DagModel)
        .where(DagModel.partition == partition, DagModel.bundle_version != version)
        .values(bundle_version=version)
    )


async def import_error_count(session: AsyncSession, partition: str) -> int:
    q = select(func.count()).select_from(ImportError_).where(ImportError_.partition == partition)
    return int((await session.execute(q)).scalar_one())


async def active_dag_count(session: AsyncSession, partition: str) -> int:
    q = select(func.count()).select_from(DagModel).where(DagModel.partition == partition, DagModel.is_active.is_(True))
    return int((await session.execute(q)).scalar_one())


# --- DAGs and runs ---------------------------------------------------------------------


async def get_active_dag(session: AsyncSession, partition: str, dag_id: str) -> DagModel | None:
    return (
        await session.execute(
            select(DagModel).where(
                DagModel.dag_id == dag_id, DagModel.partition == partition, DagModel.is_active.is_(True)
            )
        )
    ).scalar_one_or_none()


async def due_dags(session: AsyncSession, partition: str, now: dt.datetime) -> Sequence[DagModel]:
    q = select(DagModel).where(
        DagModel.partition == partition,
        DagModel.is_active.is_(True),
        DagModel.is_paused.is_(False),
        DagModel.next_dagrun_data_interval_end.is_not(None),
        DagModel.next_dagrun_data_interval_end <= now,
    )
    return (await session.execute(q)).scalars().all()


async def last_scheduled_interval_end(session: AsyncSession, dag_id: str) -> dt.datetime | None:
    q = select(func.max(DagRun.data_interval_end)).where(DagRun.dag_id == dag_id, DagRun.run_type == "scheduled")
    value: dt.datetime | None = (await session.execute(q)).scalar_one_or_none()
    if value is not None and value.tzinfo is None:  # func.max bypasses the column type
        value = value.replace(tzinfo=dt.UTC)
    return value


async def run_exists(session: AsyncSession, dag_id: str, run_id: str, logical_date: dt.datetime) -> bool:
    q = (
        select(func.count())
        .select_from(DagRun)
        .where(
            DagRun.dag_id == dag_id,
            (DagRun.run_id == run_id) | (DagRun.logical_date == logical_date),
        )
    )
    return int((await session.execute(q)).scalar_one()) > 0


async def active_runs(session: AsyncSession, partition: str) -> Sequence[DagRun]:
    # Runs of paused DAGs wait, as in Airflow: nothing of theirs is scheduled until unpaused.
    q = (
        select(DagRun)
        .join(DagModel, DagModel.dag_id == DagRun.dag_id)
        .where(DagRun.partition == partition, DagRun.state.in_(ACTIVE_RUN_STATES), DagModel.is_paused.is_(False))
        .order_by(DagRun.logical_date, DagRun.id)
    )
    return (await session.execute(q)).scalars().all()


@dataclass(frozen=True, slots=True)
class RunRow:
    """What a pass needs to know of every active run; the runs it looks at are read whole (`runs_by_id`)."""

    id: int
    dag_id: str
    run_id: str
    state: str
    logical_date: dt.datetime
    data_interval_end: dt.datetime | None
    created_at: dt.datetime
    start_date: dt.datetime | None
    bundle_version: str


_RUN_ROW = (DagRun.id, DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.logical_date, DagRun.data_interval_end,
            DagRun.created_at, DagRun.start_date, DagRun.bundle_version)  # fmt: skip


async def active_run_rows(session: AsyncSession, partition: str) -> list[RunRow]:
    """The active runs of unpaused DAGs as a few columns, in the order `active_runs` gives."""
    q = (
        select(*_RUN_ROW)
        .join(DagModel, DagModel.dag_id == DagRun.dag_id)
        .where(DagRun.partition == partition, DagRun.state.in_(ACTIVE_RUN_STATES), DagModel.is_paused.is_(False))
        .order_by(DagRun.logical_date, DagRun.id)
    )
    return [RunRow(*r) for r in (await session.execute(q)).all()]


async def runs_by_id(session: AsyncSession, ids: Sequence[int]) -> list[DagRun]:
    """Whole runs, in the order of `ids`."""
    if not ids:
        return []
    by_id = {r.id: r for r in (await session.execute(select(DagRun).where(DagRun.id.in_(list(ids))))).scalars()}
    return [by_id[i] for i in ids if i in by_id]


async def serialized_hashes(session: AsyncSession, dag_ids: Iterable[str]) -> dict[str, str]:
    ids = list(set(dag_ids))
    if not ids:
        return {}
    q = select(SerializedDagModel.dag_id, SerializedDagModel.dag_hash).where(SerializedDagModel.dag_id.in_(ids))
    return {row[0]: row[1] for row in (await session.execute(q)).all()}


async def serialized_dags(session: AsyncSession, dag_ids: Iterable[str]) -> Sequence[SerializedDagModel]:
    ids = list(set(dag_ids))
    if not ids:
        return []
    q = select(SerializedDagModel).where(SerializedDagModel.dag_id.in_(ids))
    return (await session.execute(q)).scalars().all()


async def task_instances_of(session: AsyncSession, runs: Sequence[DagRun]) -> Sequence[TaskInstance]:
    if not runs:
        return []
    keys = [(r.dag_id, r.run_id) for r in runs]
    out: list[TaskInstance] = []
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        q = select(TaskInstance).where(tuple_(TaskInstance.dag_id, TaskInstance.run_id).in_(chunk))
        out.extend((await session.execute(q)).scalars().all())
    return out


async def active_tries_by_dag(session: AsyncSession, partition: str) -> dict[str, int]:
    """Queued or running tries of each DAG of the partition (for max_active_tasks)."""
    q = (
        select(TaskInstance.dag_id, func.count())
        .where(TaskInstance.partition == partition, TaskInstance.state.in_(("queued", "running")))
        .group_by(TaskInstance.dag_id)
    )
    return {row[0]: int(row[1]) for row in (await session.execute(q)).all()}


async def queued_before(session: AsyncSession, partition: str, cutoff: dt.datetime) -> Sequence[TaskInstance]:
    q = select(TaskInstance).where(
        TaskInstance.partition == partition,
        TaskInstance.state == "queued",
        TaskInstance.queued_at < cutoff,
    )
    return (await session.execute(q)).scalars().all()


async def running_without_heartbeat(
    session: AsyncSession, partition: str, cutoff: dt.datetime
) -> Sequence[TaskInstance]:
    q = select(TaskInstance).where(
        TaskInstance.partition == partition,
        TaskInstance.state == "running",
        TaskInstance.last_heartbeat_at < cutoff,
    )
    return (await session.execute(q)).scalars().all()


async def guarded_set_state(
    session: AsyncSession,
    ti: TaskInstance,
    *,
    expected_state: str | None,
    values: dict[str, Any],
) -> bool:
    """Moves one try from the state we saw to a new one; False when someone else moved it first."""
    return await task_instances.guarded_update(
        session,
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        try_number=ti.try_number,
        expected_states=[expected_state],
        values=values,
        map_index=ti.map_index,
    )


history_row = task_instances.history_row


# --- leases -----------------------------------------------------------------------------


async def lock_lease(session: AsyncSession, partition: str, *, nowait: bool = False) -> PartitionLease | None:
    """The lease row, locked. `nowait`: raise at once if another transaction holds it (a standby's try
    must not wait on a leader frozen inside a transaction; spinner.db.errors.is_lock_busy tells)."""
    q = select(PartitionLease).where(PartitionLease.partition == partition).with_for_update(nowait=nowait)
    return (await session.execute(q.execution_options(populate_existing=True))).scalar_one_or_none()


async def get_run(session: AsyncSession, dag_id: str, run_id: str) -> DagRun | None:
    q = select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
    return (await session.execute(q)).scalar_one_or_none()


# --- limits -----------------------------------------------------------------------------


async def active_try_count(session: AsyncSession, partition: str) -> int:
    q = (
        select(func.count())
        .select_from(TaskInstance)
        .where(TaskInstance.partition == partition, TaskInstance.state.in_(("queued", "running")))
    )
    return int((await session.execute(q)).scalar_one())


async def lock_pools(session: AsyncSession, names: Iterable[str]) -> dict[str, int]:
    """Slots of the named pools, their rows locked in name order so concurrent schedulers queue up."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    q = select(Pool.name, Pool.slots).where(Pool.name.in_(wanted)).order_by(Pool.name).with_for_update()
    return {row[0]: int(row[1]) for row in (await session.execute(q)).all()}


async def pool_occupancy(session: AsyncSession, names: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(names))
    if not wanted:
        return {}
    q = (
        select(TaskInstance.pool, func.count())
        .where(TaskInstance.pool.in_(wanted), TaskInstance.state.in_(("queued", "running")))
        .group_by(TaskInstance.pool)
    )
    return {row[0]: int(row[1]) for row in (await session.execute(q)).all()}


# --- depends_on_past -------------------------------------------------------------------


async def previous_run_states(
    session: AsyncSession, dag_id: str, logical_date: dt.datetime, task_ids: Iterable[str]
) -> dict[str, str | None] | None:
    """The states of `task_ids` in the DAG's run just before `logical_date` (None: there is no such run;
    a task missing from the result did not exist in it). A mapped task's is success or skipped only
    when every instance's is; else the state of one that is not."""
    q = (
        select(DagRun.run_id)
        .where(DagRun.dag_id == dag_id, DagRun.logical_date < logical_date)
        .order_by(DagRun.logical_date.desc())
        .limit(1)
    )
    run_id = (await session.execute(q)).scalar_one_or_none()
    if run_id is None:
        return None
    ids = sorted(set(task_ids))
    rows = await session.execute(
        select(TaskInstance.task_id, TaskInstance.state).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id.in_(ids)
        )
    )
    out: dict[str, str | None] = {}
    done = ("success", "skipped")
    for task_id, state in rows.all():
        if task_id not in out or (out[task_id] in done and state not in done):
            out[task_id] = state
    return out

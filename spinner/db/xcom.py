"""Database functions of XCom, shared by the executor (push, pull, a new try), the scheduler (clear)
and the gateway (show). Each takes the caller's session and never commits.

Values are JSON text. Writes go through the executor only, for the try that is running.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from spinner.db.models import DagRun, XCom
from spinner.mapping import NO_MAP_INDEX

RETURN_VALUE = "return_value"
_CHUNK = 500


@dataclass(frozen=True)
class Pulled:
    task_id: str
    run_id: str
    value_json: str
    map_index: int = NO_MAP_INDEX  # the instance that pushed it (-1: an unmapped task)


async def set_value(
    session: AsyncSession,
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    key: str,
    value_json: str,
    now: dt.datetime,
    map_index: int = NO_MAP_INDEX,
) -> bool:
    """Writes (or replaces) one XCom; False when the run does not exist. The caller has locked the
    task instance's row, so no other writer races this delete-then-insert."""
    run_pk = (
        await session.execute(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    ).scalar_one_or_none()
    if run_pk is None:
        return False
    await session.execute(
        delete(XCom).where(
            XCom.dag_run_id == run_pk, XCom.task_id == task_id, XCom.map_index == map_index, XCom.key == key
        )
    )
    session.add(
        XCom(
            dag_run_id=run_pk, task_id=task_id, map_index=map_index, key=key, dag_id=dag_id, run_id=run_id,
            value=value_json, timestamp=now,
        )
    )  # fmt: skip
    await session.flush()
    return True


async def pull(
    session: AsyncSession,
    *,
    dag_id: str,
    run_id: str,
    task_ids: Sequence[str],
    key: str,
    include_prior_dates: bool = False,
    before: dt.datetime | None = None,
    map_index: int = NO_MAP_INDEX,
) -> dict[str, Pulled]:
    """The value of `key` of each task that has one: of run `run_id`, or with include_prior_dates the
    newest of the DAG's runs whose logical date is not after `before` (the puller's run's)."""
    found: dict[str, Pulled] = {}
    if not task_ids:
        return found
    if not include_prior_dates or before is None:
        q = select(XCom.task_id, XCom.run_id, XCom.value).where(
            XCom.dag_id == dag_id, XCom.run_id == run_id, XCom.task_id.in_(sorted(set(task_ids))),
            XCom.map_index == map_index, XCom.key == key,
        )  # fmt: skip
        for task_id, rid, value in (await session.execute(q)).all():
            found[task_id] = Pulled(task_id, rid, value)
        return found
    for task_id in sorted(set(task_ids)):  # a few tasks: one indexed query each, the newest row only
        newest = (
            select(XCom.run_id, XCom.value)
            .join(DagRun, DagRun.id == XCom.dag_run_id)
            .where(
                DagRun.dag_id == dag_id, DagRun.logical_date <= before, XCom.task_id == task_id,
                XCom.map_index == map_index, XCom.key == key,
            )
            .order_by(DagRun.logical_date.desc())
            .limit(1)
        )  # fmt: skip
        row = (await session.execute(newest)).first()
        if row is not None:
            found[task_id] = Pulled(task_id, row[0], row[1])
    return found


async def pull_instances(
    session: AsyncSession,
    *,
    dag_id: str,
    run_id: str,
    task_ids: Sequence[str],
    key: str,
    include_prior_dates: bool = False,
    before: dt.datetime | None = None,
) -> dict[str, list[Pulled]]:
    """Every value of `key` of each task that has one, in map_index order: one for an unmapped task
    (map_index -1), one per instance that pushed it for a mapped task (docs/adr/0007). Of run `run_id`,
    or with include_prior_dates of the newest of the DAG's runs, with a logical date not after
    `before`, in which the task pushed the key (all its instances of that run)."""
    found: dict[str, list[Pulled]] = {}
    if not task_ids:
        return found
    wanted = sorted(set(task_ids))
    if not include_prior_dates or before is None:
        q = (
            select(XCom.task_id, XCom.run_id, XCom.value, XCom.map_index)
            .where(XCom.dag_id == dag_id, XCom.run_id == run_id, XCom.task_id.in_(wanted), XCom.key == key)
            .order_by(XCom.task_id, XCom.map_index)
        )
        for task_id, rid, value, map_index in (await session.execute(q)).all():
            found.setdefault(task_id, []).append(Pulled(task_id, rid, value, int(map_index)))
        return found
    for task_id in wanted:  # a few tasks: the newest run that has the key, then its rows
        newest = (
            select(XCom.dag_run_id, XCom.run_id)
            .join(DagRun, DagRun.id == XCom.dag_run_id)
            .where(DagRun.dag_id == dag_id, DagRun.logical_date <= before, XCom.task_id == task_id, XCom.key == key)
            .order_by(DagRun.logical_date.desc())
            .limit(1)
        )
        run = (await session.execute(newest)).first()
        if run is None:
            continue
        rows = (
            select(XCom.value, XCom.map_index)
            .where(XCom.dag_run_id == run[0], XCom.task_id == task_id, XCom.key == key)
            .order_by(XCom.map_index)
        )
        found[task_id] = [
            Pulled(task_id, run[1], value, int(map_index)) for value, map_index in (await session.execute(rows)).all()
        ]
    return found


async def clear(session: AsyncSession, instances: Sequence[tuple[str, str, str]]) -> int:
    """Deletes every XCom of the given (dag_id, run_id, task_id) tasks, all their instances; returns how many."""
    removed = 0
    ordered = sorted(set(instances))
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        result = await session.execute(
            delete(XCom)
            .where(tuple_(XCom.dag_id, XCom.run_id, XCom.task_id).in_(chunk))
            .execution_options(synchronize_session=False)
        )
        removed += int(result.rowcount)  # type: ignore[attr-defined]
    return removed


async def clear_instances(session: AsyncSession, instances: Sequence[tuple[str, str, str, int]]) -> int:
    """Deletes every XCom of the given (dag_id, run_id, task_id, map_index) task instances only (a new
    try of one instance of a mapped task leaves the other instances' XComs alone); returns how many."""
    removed = 0
    ordered = sorted(set(instances))
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        result = await session.execute(
            delete(XCom)
            .where(tuple_(XCom.dag_id, XCom.run_id, XCom.task_id, XCom.map_index).in_(chunk))
            .execution_options(synchronize_session=False)
        )
        removed += int(result.rowcount)  # type: ignore[attr-defined]
    return removed


# (dag_id, run_id, task_id, key): an XCom of a task in a run, whatever the instance.
XComRef = tuple[str, str, str, str]


async def values_of(session: AsyncSession, refs: Sequence[XComRef]) -> dict[XComRef, str]:
    """The JSON value of each XCom an unmapped task instance (map_index -1) pushed, of many runs at
    once (the scheduler expanding mapped tasks); a ref missing from the result was not pushed."""
    found: dict[XComRef, str] = {}
    ordered = sorted(set(refs))
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        q = select(XCom.dag_id, XCom.run_id, XCom.task_id, XCom.key, XCom.value).where(
            tuple_(XCom.dag_id, XCom.run_id, XCom.task_id, XCom.key).in_(chunk), XCom.map_index == NO_MAP_INDEX
        )
        for dag_id, run_id, task_id, key, value in (await session.execute(q)).all():
            found[(dag_id, run_id, task_id, key)] = value
    return found


async def instance_counts(session: AsyncSession, refs: Sequence[XComRef]) -> dict[XComRef, int]:
    """How many instances of a mapped task (map_index 0, 1, ...) pushed each XCom, of many runs at
    once; a ref missing from the result: none did."""
    found: dict[XComRef, int] = {}
    ordered = sorted(set(refs))
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        q = (
            select(XCom.dag_id, XCom.run_id, XCom.task_id, XCom.key, func.count())
            .where(tuple_(XCom.dag_id, XCom.run_id, XCom.task_id, XCom.key).in_(chunk), XCom.map_index >= 0)
            .group_by(XCom.dag_id, XCom.run_id, XCom.task_id, XCom.key)
        )
        for dag_id, run_id, task_id, key, count in (await session.execute(q)).all():
            found[(dag_id, run_id, task_id, key)] = int(count)
    return found


async def of_task_instance(
    session: AsyncSession, dag_id: str, run_id: str, task_id: str, map_index: int | None = None
) -> Sequence[XCom]:
    """The XComs of a task: of every instance (None), or of one (map_index; -1: an unmapped task)."""
    q = select(XCom).where(XCom.dag_id == dag_id, XCom.run_id == run_id, XCom.task_id == task_id)
    if map_index is not None:
        q = q.where(XCom.map_index == map_index)
    return (await session.execute(q.order_by(XCom.map_index, XCom.key))).scalars().all()

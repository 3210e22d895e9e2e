"""The dag_callback rows: who moves them, and the key a callback process speaks with.

pending -> running: the executor, when RunCallback launches the process (guarded on pending, so
two RunCallbacks of one row launch it once). running -> success | failed: the executor, from the
process's FinishCallback or its end. The scheduler only inserts rows, in the transaction that
ended the run or found its deadline missed. Functions take the caller's session and never commit.

A callback process has a task-try-shaped key, so every executor backend runs it as it runs a
try: (dag_id, run_id, "callback:<kind>", <callback id>). ':' is never in a task id, so the key
is never a task's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from spinner.db.models import DagCallback

CALLBACK_PREFIX = "callback:"
KINDS = ("on_success_callback", "on_failure_callback", "deadline")
ENDED = ("success", "failed")


def callback_task_id(kind: str) -> str:
    return f"{CALLBACK_PREFIX}{kind}"


def is_callback_task_id(task_id: str) -> bool:
    return task_id.startswith(CALLBACK_PREFIX)


def kind_of(task_id: str) -> str:
    return task_id[len(CALLBACK_PREFIX) :]


async def pending(session: AsyncSession, partition: str, limit: int = 100) -> list[DagCallback]:
    q = (
        select(DagCallback)
        .where(DagCallback.partition == partition, DagCallback.state == "pending")
        .order_by(DagCallback.id)
        .limit(limit)
    )
    return list((await session.execute(q)).scalars())


async def get(session: AsyncSession, callback_id: int) -> DagCallback | None:
    return await session.get(DagCallback, callback_id, populate_existing=True)


async def move(
    session: AsyncSession,
    callback_id: int,
    *,
    expected: Sequence[str],
    values: dict[str, Any],
    dag_id: str | None = None,
    run_id: str | None = None,
) -> bool:
    """Guarded: moves the row only from an expected state (and, when given, only if it is this run's)."""
    conditions = [DagCallback.id == callback_id, DagCallback.state.in_(list(expected))]
    if dag_id is not None:
        conditions.append(DagCallback.dag_id == dag_id)
    if run_id is not None:
        conditions.append(DagCallback.run_id == run_id)
    result = await session.execute(
        update(DagCallback).where(*conditions).values(**values).execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def running_of(session: AsyncSession, executor: str) -> list[DagCallback]:
    q = select(DagCallback).where(DagCallback.state == "running", DagCallback.executor == executor)
    return list((await session.execute(q)).scalars())


async def of_runs(session: AsyncSession, runs: Sequence[tuple[str, str]]) -> list[DagCallback]:
    """Every callback of these (dag_id, run_id) runs, oldest first."""
    out: list[DagCallback] = []
    for start in range(0, len(runs), 500):
        chunk = list(runs[start : start + 500])
        q = (
            select(DagCallback)
            .where(tuple_(DagCallback.dag_id, DagCallback.run_id).in_(chunk))
            .order_by(DagCallback.id)
        )
        out.extend((await session.execute(q)).scalars())
    return out


async def runs_with_kind(session: AsyncSession, runs: Sequence[tuple[str, str]], kind: str) -> set[tuple[str, str]]:
    """Which of these runs already have a callback of this kind."""
    found: set[tuple[str, str]] = set()
    for start in range(0, len(runs), 500):
        chunk = list(runs[start : start + 500])
        q = select(DagCallback.dag_id, DagCallback.run_id).where(
            tuple_(DagCallback.dag_id, DagCallback.run_id).in_(chunk), DagCallback.kind == kind
        )
        found.update((r[0], r[1]) for r in (await session.execute(q)).all())
    return found


def new(
    *,
    dag_id: str,
    run_id: str,
    partition: str,
    kind: str,
    bundle_version: str,
    fileloc: str,
    details: dict[str, Any],
    now: dt.datetime,
) -> DagCallback:
    return DagCallback(
        dag_id=dag_id,
        run_id=run_id,
        partition=partition,
        kind=kind,
        state="pending",
        bundle_version=bundle_version,
        fileloc=fileloc,
        details=details,
        created_at=now,
        executor="",
        error="",
    )

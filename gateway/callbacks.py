"""A run's DAG callbacks and missed deadline, as the REST API and the run's page show them.

Each callback ran in a process of its own whose log reads like a try's: task id `callback:<kind>`,
try number the callback's id (spinner/db/callbacks.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from spinner.db import callbacks as queries
from spinner.db.models import DagCallback


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class CallbackInfo:
    id: int
    kind: str
    state: str
    reason: str
    created_at: str | None
    started_at: str | None
    ended_at: str | None
    error: str
    log_task_id: str
    log_url: str

    @classmethod
    def of(cls, row: DagCallback) -> CallbackInfo:
        task_id = queries.callback_task_id(row.kind)
        url = (
            f"/api/v1/dags/{quote(row.dag_id, safe='')}/runs/{quote(row.run_id, safe='')}"
            f"/tasks/{quote(task_id, safe='')}/logs?try_number={row.id}"
        )
        return cls(
            id=row.id, kind=row.kind, state=row.state, reason=str((row.details or {}).get("reason", "")),
            created_at=_iso(row.created_at), started_at=_iso(row.started_at), ended_at=_iso(row.ended_at),
            error=row.error, log_task_id=task_id, log_url=url,
        )  # fmt: skip


@dataclass(frozen=True)
class DeadlineInfo:
    deadline_at: str
    missed_at: str
    reference: str
    after_seconds: float
    declared: bool
    notified: str  # the notifier's callback state: pending, running, success, failed


@dataclass(frozen=True)
class RunCallbacks:
    callbacks: list[CallbackInfo]
    deadline_missed: DeadlineInfo | None


async def run_callbacks(session: AsyncSession, dag_id: str, run_id: str) -> RunCallbacks:
    rows = await queries.of_runs(session, [(dag_id, run_id)])
    deadline: DeadlineInfo | None = None
    for row in rows:
        if row.kind == "deadline":
            d: dict[str, Any] = row.details or {}
            deadline = DeadlineInfo(
                deadline_at=str(d.get("deadline_at", "")), missed_at=str(d.get("missed_at", "")),
                reference=str(d.get("reference", "")), after_seconds=float(d.get("after", 0.0)),
                declared=bool(d.get("declared", False)), notified=row.state,
            )  # fmt: skip
    return RunCallbacks([CallbackInfo.of(r) for r in rows], deadline)


async def callback_log_try(
    session: AsyncSession, dag_id: str, run_id: str, task_id: str, try_number: int | None
) -> int:
    """The callback whose log is asked for (task id callback:<kind>; the newest of that kind when None).
    Raises LookupError with what is missing."""
    kind = queries.kind_of(task_id)
    rows = [r for r in await queries.of_runs(session, [(dag_id, run_id)]) if r.kind == kind]
    if try_number is not None:
        rows = [r for r in rows if r.id == try_number]
    if not rows:
        raise LookupError(f"run '{run_id}' of DAG '{dag_id}' has no {kind} callback {try_number or ''}".rstrip())
    row = rows[-1]
    if row.state == "pending":
        raise LookupError(f"the {kind} callback of run '{run_id}' has not started yet: no log so far")
    return row.id

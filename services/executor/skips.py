"""Skipping the task instances a succeeding try names (a branch not taken, a short circuit).

The runner sends them with its Finish (RunnerFinishRequest.skip_task_ids). They are written in the
transaction that records the try's success, and only then: a try that fails, or whose Finish is
refused, skips nothing. Only task instances of the same run still in state none move (none ->
skipped): a task the scheduler has scheduled, or that runs, belongs to someone else (docs/adr/0001).
Their end_date is set, so the schedulers' look for ended tries (services/scheduler/engine/ti_state.py)
sees them on the next pass and trigger rules carry the skip downstream.

A task is skipped whole: the rows are matched by (dag_id, run_id, task_id), so every instance of a
mapped task (its -1 row before it is expanded, or instances 0..n-1 that are still in state none)
moves together (docs/adr/0007-dynamic-task-mapping.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from services.executor.backends.base import TryKey
from spinner.db.bulk import BulkUpdate
from spinner.db.models import TaskInstance
from spinner.sdk.dag import ID_RE

MAX_SKIPS = 10_000
_TI = cast(Table, TaskInstance.__table__)

_SKIP_UPDATE = BulkUpdate(
    _TI,
    keys=["dag_id", "run_id", "task_id"],
    values=["start_date", "end_date", "error"],
    constants={"state": "skipped"},
    guard=_TI.c.state.is_(None),
)


class BadSkip(ValueError):
    """The task ids to skip are malformed (the Finish is refused as an invalid request)."""


def checked(key: TryKey, task_ids: Iterable[str]) -> tuple[str, ...]:
    """The task ids to skip, without the try's own; refuses ids no task can have."""
    ids = sorted(set(task_ids) - {key.task_id})
    if len(ids) > MAX_SKIPS:
        raise BadSkip(f"at most {MAX_SKIPS} task ids may be skipped at once, not {len(ids)}")
    bad = [i for i in ids if not ID_RE.match(i)]
    if bad:
        raise BadSkip(f"skip_task_ids {bad[:5]} are not task ids")
    return tuple(ids)


def rows(key: TryKey, task_ids: Sequence[str], now: dt.datetime) -> list[dict[str, Any]]:
    instance = f"[{key.map_index}]" if key.map_index >= 0 else ""
    error = f"Skipped by {key.task_id}{instance} (try {key.try_number})"
    return [
        {"dag_id": key.dag_id, "run_id": key.run_id, "task_id": t, "start_date": now, "end_date": now, "error": error}
        for t in task_ids
    ]


async def apply(session: AsyncSession, skip_rows: Sequence[dict[str, Any]]) -> int:
    """Moves the rows still in state none to skipped; returns how many moved."""
    if not skip_rows:
        return 0
    return await _SKIP_UPDATE.execute(session, skip_rows)

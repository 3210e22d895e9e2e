"""The one guarded update every service uses to move a task try's state (see docs/adr/0001).

A try moves only if it is still the try the writer saw (try_number) in a state the writer
expected; a rowcount of 0 means someone else moved it first, and the writer must not overwrite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from spinner.db.models import TaskInstance, TaskInstanceHistory


async def guarded_update(
    session: AsyncSession,
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    try_number: int,
    expected_states: Sequence[str | None],
    values: dict[str, Any],
    map_index: int = -1,
) -> bool:
    """True when this call moved the try; never commits."""
    states = [s for s in expected_states if s is not None]
    conditions = [TaskInstance.state.in_(states)] if states else []
    if None in expected_states:
        conditions.append(TaskInstance.state.is_(None))
    result = await session.execute(
        update(TaskInstance)
        .where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            TaskInstance.task_id == task_id,
            TaskInstance.map_index == map_index,
            TaskInstance.try_number == try_number,
            or_(*conditions),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def history_row(ti: TaskInstance) -> TaskInstanceHistory:
    """The ended try as the attempts list shows it."""
    return TaskInstanceHistory(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        map_index=ti.map_index,
        try_number=ti.try_number,
        state=ti.state or "",
        start_date=ti.start_date,
        end_date=ti.end_date,
        duration=ti.duration,
        hostname=ti.hostname,
        error=ti.error,
    )

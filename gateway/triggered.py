"""Links between a run and the task that triggered it (TriggerDagRunOperator), for the pages.

A triggered run records its triggering dag, run and task (dag_run.triggering_*). The run's page
links to that task, and the task's page links to the runs it triggered. A link to a DAG the
viewer may not read is not shown (that DAG does not exist for them).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.auth import Actor
from spinner.db.models import DagRun


@dataclass(frozen=True)
class RunLink:
    dag_id: str
    run_id: str
    task_id: str | None = None  # the triggering task, for a run's "triggered by"
    state: str = ""


async def triggering_task(
    readers: async_sessionmaker[AsyncSession], actor: Actor, dag_id: str, run_id: str
) -> RunLink | None:
    """The task that triggered this run, if a task did and the viewer may read its DAG."""
    async with readers() as s:
        q = select(DagRun.triggering_dag_id, DagRun.triggering_run_id, DagRun.triggering_task_id).where(
            DagRun.dag_id == dag_id, DagRun.run_id == run_id
        )
        row = (await s.execute(q)).one_or_none()
    if row is None or not row[0] or not row[1] or not row[2]:
        return None
    if not actor.principal.can_read(row[0]):
        return None
    return RunLink(dag_id=row[0], run_id=row[1], task_id=row[2])


async def triggered_runs(
    readers: async_sessionmaker[AsyncSession], actor: Actor, dag_id: str, run_id: str, task_id: str, limit: int = 20
) -> list[RunLink]:
    """The runs this task instance triggered (newest first) that the viewer may read."""
    async with readers() as s:
        q = (
            select(DagRun.dag_id, DagRun.run_id, DagRun.state)
            .where(
                DagRun.triggering_dag_id == dag_id,
                DagRun.triggering_run_id == run_id,
                DagRun.triggering_task_id == task_id,
            )
            .order_by(DagRun.created_at.desc())
            .limit(limit)
        )
        rows = (await s.execute(q)).all()
    return [RunLink(dag_id=r[0], run_id=r[1], state=r[2]) for r in rows if actor.principal.can_read(r[0])]

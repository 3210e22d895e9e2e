"""depends_on_past and wait_for_downstream: a task of a run waits on the same task of the previous run.

Airflow's rules: a task with `depends_on_past` is scheduled only when its instance in the DAG's
previous run (by logical date, of any run type) succeeded or was skipped (a mapped task: every
instance of it); with `wait_for_downstream` the previous run's instances of its direct downstream
tasks must have too. The first run, and a task that did not exist in the previous run, do not
wait. Only the move to scheduled waits: skips and upstream failures from trigger rules still apply.

A waiting run is looked at again every pass (it is "unsettled"), so it goes on as soon as the
previous run's task ends, not only at the next full pass.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.scheduler import queries
from services.scheduler.engine.ti_state import RunTis, instances
from spinner.db.models import DagRun
from spinner.sdk.serialization import SerializedDAG, SerializedTask

DONE_FOR_THE_PAST = frozenset({"success", "skipped"})

RunKey = tuple[str, str]
# A run's previous run's states of the tasks that matter (None: no previous run).
PastStates = dict[str, str | None] | None


def watched_tasks(sdag: SerializedDAG) -> set[str]:
    """The task ids whose previous-run state some task of the DAG waits on."""
    out: set[str] = set()
    for task in sdag.tasks.values():
        if task.depends_on_past:
            out.add(task.task_id)
        if task.wait_for_downstream:
            out.update(task.downstream_task_ids)
    return out


async def load(session: AsyncSession, runs: Sequence[tuple[DagRun, SerializedDAG, RunTis]]) -> dict[RunKey, PastStates]:
    """The previous runs' states for the runs where a task that depends on the past has not been
    decided yet (two small queries per such run; none for the others)."""
    out: dict[RunKey, PastStates] = {}
    for run, sdag, tis in runs:
        undecided = any(
            t.depends_on_past and (not (rows := instances(tis, t.task_id)) or any(r.state is None for r in rows))
            for t in sdag.tasks.values()
        )
        watched = watched_tasks(sdag) if undecided else set()
        if watched:
            out[(run.dag_id, run.run_id)] = await queries.previous_run_states(
                session, run.dag_id, run.logical_date, watched
            )
    return out


def allows(task: SerializedTask, past: PastStates) -> bool:
    """May `task` be scheduled, given its previous run's states?"""
    if not task.depends_on_past or past is None:
        return True
    needed = [task.task_id, *(sorted(task.downstream_task_ids) if task.wait_for_downstream else [])]
    return all(past[t] in DONE_FOR_THE_PAST for t in needed if t in past)

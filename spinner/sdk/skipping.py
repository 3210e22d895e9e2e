"""Skipping other tasks of the run from a task: what branch and short-circuit operators do.

A task names the task instances it skips with `skip(...)`; the runner sends them with the try's
success (RunnerFinishRequest.skip_task_ids) and the executor moves those still in state none to
skipped in the transaction that records the success. Nothing is skipped if the try does not succeed.
The task code never writes a state itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spinner.sdk.operators.base import BaseOperator

_requested: set[str] = set()


def skip(task_ids: Iterable[str]) -> None:
    """Asks that these task instances of the running try's DAG run be skipped when the try succeeds."""
    _requested.update(task_ids)


def take_requested() -> list[str]:
    """The task ids asked for so far, sorted; the list starts empty again (the runner calls this once)."""
    out = sorted(_requested)
    _requested.clear()
    return out


def direct_downstream(task: BaseOperator) -> set[str]:
    return set(task.downstream_task_ids)


def all_downstream(task: BaseOperator) -> set[str]:
    """Every task that depends on `task`, directly or through others."""
    if task.dag is None:
        return set(task.downstream_task_ids)
    seen: set[str] = set()
    todo = list(task.downstream_task_ids)
    while todo:
        task_id = todo.pop()
        if task_id in seen:
            continue
        seen.add(task_id)
        todo.extend(task.dag.get_task(task_id).downstream_task_ids)
    return seen

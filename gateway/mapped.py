"""Which task instance a request means, by its map_index (docs/adr/0007-dynamic-task-mapping.md).

An unmapped task has one instance, map_index -1, and so does a mapped task until the scheduler
expands it; then its instances are 0 .. n-1 and the -1 row is gone. A request names one instance
with `map_index` (absent: -1); one that names none gets a 404 that says which there are, and a
map_index that is not one at all a 400. Actions name instances with `map_indexes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway import queries
from gateway.errors import InvalidRequest, NoSuchInstance, NotFound
from spinner.db.models import TaskInstance
from spinner.mapping import NO_MAP_INDEX

MAX_MAP_INDEX = (1 << 31) - 1  # the column and the protos hold an int32
MAX_SELECTED = 10_000  # map_indexes in one action: far more than scheduler.max_map_length's default


def check_map_index(value: int) -> int:
    if not NO_MAP_INDEX <= value <= MAX_MAP_INDEX:
        raise InvalidRequest(
            f"map_index must be -1 (an unmapped task) or the index of a mapped task's instance (0, 1, ...), not {value}"
        )
    return value


def spans(indexes: Sequence[int]) -> str:
    """Sorted indexes as runs: 0, 1, 2, 3, 5 -> '0..3, 5' (the first few runs of a scattered list)."""
    parts: list[str] = []
    i = 0
    while i < len(indexes):
        j = i
        while j + 1 < len(indexes) and indexes[j + 1] == indexes[j] + 1:
            j += 1
        parts.append(str(indexes[i]) if i == j else f"{indexes[i]}..{indexes[j]}")
        i = j + 1
    return ", ".join(parts[:5] + (["..."] if len(parts) > 5 else []))


def not_this_instance(run_id: str, task_id: str, map_index: int, indexes: Sequence[int]) -> NoSuchInstance | None:
    """Why `map_index` names none of the task's instances (`indexes`: their map_index, sorted); None when it
    names one, or when the task has none at all (the caller's "task not found" says it better)."""
    mapped = [i for i in indexes if i != NO_MAP_INDEX]
    if map_index in indexes or not indexes:
        return None
    what = f"task '{task_id}' of run '{run_id}'"
    if not mapped:
        return NoSuchInstance(
            f"{what} has no instance with map_index {map_index}: it is not mapped, or not expanded yet "
            "(leave map_index out)"
        )
    if map_index == NO_MAP_INDEX:
        return NoSuchInstance(
            f"{what} is mapped: it has {len(mapped)} instance{'s' if len(mapped) > 1 else ''}; "
            f"name one with map_index ({spans(mapped)})"
        )
    return NoSuchInstance(f"{what} has no instance with map_index {map_index} (its instances: {spans(mapped)})")


async def instance(
    session: AsyncSession, dag_id: str, run_id: str, task_id: str, map_index: int
) -> TaskInstance | None:
    """The instance asked for. Raises NotFound (saying which instances there are) when the task has
    instances but not this one; None when the task has no instance in the run at all."""
    ti = await queries.task_instance(session, dag_id, run_id, task_id, map_index)
    if ti is not None:
        return ti
    indexes = (await queries.map_indexes(session, dag_id, run_id, [task_id])).get(task_id, [])
    refusal = not_this_instance(run_id, task_id, map_index, indexes)
    if refusal is not None:
        raise refusal
    return None


def parse_map_indexes(raw: Any) -> list[int]:
    """An action's `map_indexes`: a list of instance indexes (0 or more), sorted, each once."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in raw):
        raise InvalidRequest("map_indexes must be a list of whole numbers (the instances of the mapped tasks)")
    if len(raw) > MAX_SELECTED:
        raise InvalidRequest(f"map_indexes may name at most {MAX_SELECTED} instances")
    bad = [i for i in raw if not 0 <= i <= MAX_MAP_INDEX]
    if bad:
        raise InvalidRequest(
            f"map_indexes are a mapped task's instances, 0 or more (leave it out for every instance), not {bad[0]}"
        )
    return sorted(set(raw))


async def check_selected(
    session: AsyncSession, dag_id: str, run_id: str, task_ids: Sequence[str], map_indexes: Sequence[int]
) -> None:
    """Every task in task_ids has every instance in map_indexes (which name instances of those tasks)."""
    if not map_indexes:
        return
    if not task_ids:
        raise InvalidRequest("map_indexes needs task_ids: the mapped task(s) whose instances they are")
    found = await queries.map_indexes(session, dag_id, run_id, task_ids)
    for task_id in task_ids:
        indexes = found.get(task_id)
        if not indexes:
            raise NotFound(f"task '{task_id}' of run '{run_id}' of DAG '{dag_id}' not found")
        for i in map_indexes:
            refusal = not_this_instance(run_id, task_id, i, indexes)
            if refusal is not None:
                raise refusal

"""Expanding mapped tasks: how many instances a mapped task gets in a run (docs/adr/0007-dynamic-task-mapping.md).

A mapped task has its -1 row until its trigger rule says run. Then its length is the product of
its mapped arguments' lengths: a literal's is in the serialized DAG; an upstream XCom's is the
number of items of the value the upstream pushed (a list, or a dict's pairs), or, when the
upstream is itself mapped, the number of its instances that pushed that key. The XComs are read
only for the tasks being expanded, all of a pass's at once (two queries at most).

This module decides; engine/scheduling.py writes the outcome in the pass's transaction: the -1
row skipped (length 0) or failed (too long, or not a list or dict), or made instance 0 with
instances 1 .. n-1 beside it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from spinner.db import xcom as db_xcom
from spinner.mapping import items_of, total_length
from spinner.sdk.serialization import SerializedDAG, SerializedTask

# The setting that caps a mapped task's length, as the error names it.
SETTING = "scheduler.max_map_length"


@dataclass(frozen=True)
class Inputs:
    """The upstream XComs a pass's expansions map over."""

    values: dict[db_xcom.XComRef, str]  # JSON pushed by an unmapped upstream
    counts: dict[db_xcom.XComRef, int]  # instances of a mapped upstream that pushed the key


@dataclass(frozen=True)
class Outcome:
    """What becomes of a mapped task's -1 row: `length` instances, or it ends in `state` with `error`."""

    length: int
    state: str | None = None
    error: str = ""


def _upstream_is_mapped(dag: SerializedDAG, task_id: str) -> bool:
    upstream = dag.tasks.get(task_id)
    return upstream is not None and upstream.is_mapped


async def read_inputs(
    session: AsyncSession, wanted: Iterable[tuple[str, str, SerializedDAG, SerializedTask]]
) -> Inputs:
    """The XComs the (dag_id, run_id, DAG, mapped task) expansions need; no query when none maps over one."""
    values: list[db_xcom.XComRef] = []
    counts: list[db_xcom.XComRef] = []
    for dag_id, run_id, dag, task in wanted:
        for entry in task.expand or ():
            if "task_id" in entry:
                ref = (dag_id, run_id, str(entry["task_id"]), str(entry["key"]))
                (counts if _upstream_is_mapped(dag, ref[2]) else values).append(ref)
    return Inputs(
        await db_xcom.values_of(session, values) if values else {},
        await db_xcom.instance_counts(session, counts) if counts else {},
    )


def outcome(
    dag_id: str, run_id: str, dag: SerializedDAG, task: SerializedTask, inputs: Inputs, max_length: int
) -> Outcome:
    """How many instances `task` gets in run `run_id`, or why it gets none."""
    lengths: list[tuple[str, int]] = []
    for entry in task.expand or ():
        name = str(entry["name"])
        if "task_id" not in entry:
            lengths.append((name, int(entry["length"])))
            continue
        upstream, key = str(entry["task_id"]), str(entry["key"])
        ref = (dag_id, run_id, upstream, key)
        if _upstream_is_mapped(dag, upstream):
            lengths.append((name, inputs.counts.get(ref, 0)))
            continue
        where = (
            f"Task '{task.task_id}' cannot be expanded: its argument '{name}' maps over the XCom '{key}' "
            f"of task '{upstream}'"
        )
        raw = inputs.values.get(ref)
        if raw is None:
            return Outcome(0, "failed", f"{where}, which pushed no such XCom")
        try:
            value = json.loads(raw)
        except ValueError:
            return Outcome(0, "failed", f"{where}, which is not JSON")
        items = items_of(value)
        if items is None:
            return Outcome(0, "failed", f"{where}, which is {type(value).__name__}, not a list or dict")
        lengths.append((name, len(items)))
    total = total_length([n for _, n in lengths])
    if total == 0:
        empty = ", ".join(f"'{name}'" for name, n in lengths if n == 0)
        return Outcome(0, "skipped", f"Task '{task.task_id}' mapped over nothing: {empty} had no items")
    if total > max_length:
        return Outcome(
            0,
            "failed",
            f"Task '{task.task_id}' would expand to {total} task instances, more than {SETTING} ({max_length}); "
            "map over fewer items or raise the setting",
        )
    return Outcome(total)

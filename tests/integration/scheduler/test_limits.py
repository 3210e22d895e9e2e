"""Concurrency limits: pools shared by all partitions, max_active_tasks, the partition's running limit."""

from __future__ import annotations

import datetime as dt

import pytest

from spinner.db.models import Pool, TaskInstance

from .conftest import PARTITION, Stack

FAN = """
from spinner import DAG, BashOperator, Tier
with DAG(dag_id="{dag_id}", tier=Tier.TIER1, max_active_tasks={mat}) as dag:
    for i in range(4):
        BashOperator(task_id=f"t{{i}}", bash_command="sleep 0.4", pool="{pool}")
"""


def max_overlap(tis: list[TaskInstance]) -> int:
    """The most tries that were running at the same moment."""
    events: list[tuple[dt.datetime, int]] = []
    for ti in tis:
        assert ti.start_date is not None and ti.end_date is not None
        events += [(ti.start_date, 1), (ti.end_date, -1)]
    peak = now = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        now += delta
        peak = max(peak, now)
    return peak


async def run_fan(stack: Stack, dag_id: str, pool: str = "default_pool", mat: int = 16) -> list[TaskInstance]:
    stack.write_dag(f"{PARTITION}/team/{dag_id}.py", FAN.format(dag_id=dag_id, pool=pool, mat=mat))
    await stack.publish()
    await stack.wait_dag(dag_id)
    run_id = await stack.trigger(dag_id)
    await stack.wait_run(dag_id, run_id, timeout=60)
    return list((await stack.tis(dag_id, run_id)).values())


async def test_a_pool_of_one_slot_runs_one_task_at_a_time(stack: Stack) -> None:
    async with stack.sessions() as s, s.begin():
        s.add(Pool(name="tiny", slots=1, description="one at a time"))
    tis = await run_fan(stack, "pooled", pool="tiny")
    assert {ti.state for ti in tis} == {"success"}
    assert max_overlap(tis) == 1


async def test_unknown_pool_fails_the_task_with_a_reason(stack: Stack) -> None:
    tis = await run_fan(stack, "nopool", pool="missing")
    assert {ti.state for ti in tis} == {"failed"}
    assert "Pool 'missing' does not exist" in tis[0].error


async def test_max_active_tasks_per_dag(stack: Stack) -> None:
    tis = await run_fan(stack, "capped", mat=2)
    assert {ti.state for ti in tis} == {"success"}
    assert max_overlap(tis) <= 2


@pytest.mark.scheduler_settings(max_running_tasks=1)
async def test_partition_running_limit(stack: Stack) -> None:
    tis = await run_fan(stack, "limited")
    assert {ti.state for ti in tis} == {"success"}
    assert max_overlap(tis) == 1

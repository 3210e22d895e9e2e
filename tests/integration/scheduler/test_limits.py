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


INCREMENTAL = """
import datetime as dt
from spinner import DAG, BashOperator, Tier
with DAG(dag_id="incremental", tier=Tier.TIER1, max_active_tasks=1) as dag:
    first = BashOperator(task_id="first", bash_command="true")
    flaky = BashOperator(task_id="flaky", retries=1, retry_delay=dt.timedelta(seconds=0.3),
                         bash_command="if [ -e {marker} ]; then true; else touch {marker}; exit 1; fi")
    fan = [BashOperator(task_id=f"fan{{i}}", bash_command="true") for i in range(3)]
    last = BashOperator(task_id="last", bash_command="true")
    first >> flaky >> fan
    fan >> last
"""


@pytest.mark.scheduler_settings(full_pass_interval=3600)
async def test_runs_progress_on_incremental_passes_alone(stack: Stack, tmp_path) -> None:
    """With full passes an hour apart, every pass looks only at runs whose tries ended, runs waiting
    on a limit or a retry delay, and new runs: a run still moves through a retry, a limit and a fan-in."""
    stack.write_dag(f"{PARTITION}/team/incremental.py", INCREMENTAL.format(marker=tmp_path / "failed-once"))
    await stack.publish()
    await stack.wait_dag("incremental")
    first = await stack.trigger("incremental", run_id="one")
    second = await stack.trigger("incremental", run_id="two")
    for run_id in (first, second):
        run = await stack.wait_run("incremental", run_id, timeout=60)
        assert run.state == "success"
        tis = await stack.tis("incremental", run_id)
        assert {t.state for t in tis.values()} == {"success"}
        fan = [tis[f"fan{i}"] for i in range(3)]
        assert max_overlap(fan) == 1  # max_active_tasks=1: the fan waited on the limit, one at a time
    assert (await stack.tis("incremental", first))["flaky"].try_number + (await stack.tis("incremental", second))[
        "flaky"
    ].try_number == 3  # one of the two runs retried its flaky task

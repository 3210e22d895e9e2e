"""Dynamic task mapping through the real scheduler and executor on the Kubernetes backend (the
test double's pods, through kubernetes_asyncio): each instance of a task mapped over an upstream
XCom runs in its own pod with its own item, log and XCom, and the reduce step gets them all."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from spinner.db.models import TaskInstance, XCom
from tests.fakes.kubernetes import FakeKubernetes

from .conftest import PARTITION, Stack

MAPPED = """
from spinner import DAG, Tier, task

with DAG(dag_id="kmap", tier=Tier.TIER1) as dag:

    @task
    def sizes():
        return [2, 3, 4]

    @task
    def square(n, ti=None):
        print(f"instance {ti.map_index} squares {n}")
        return n * n

    @task
    def total(values):
        return sum(values)

    total(square.expand(n=sizes()))
"""


@pytest.mark.executor_settings(backend="kubernetes", k8s_namespace="spinner", k8s_pending_timeout=30)
async def test_each_instance_of_a_mapped_task_runs_in_its_own_pod(
    stack: Stack, fake_kubernetes: FakeKubernetes
) -> None:
    stack.write_dag(f"{PARTITION}/team/kmap.py", MAPPED)
    await stack.publish()
    await stack.wait_dag("kmap", timeout=60)
    run_id = await stack.trigger("kmap")
    run = await stack.wait_run("kmap", run_id, timeout=120)
    async with stack.sessions() as s:
        rows = (await s.execute(select(TaskInstance).where(TaskInstance.run_id == run_id))).scalars().all()
        xcoms = (await s.execute(select(XCom).where(XCom.run_id == run_id))).scalars().all()
    states = {(r.task_id, r.map_index): (r.state, r.error) for r in rows}
    assert run.state == "success", states
    assert set(states) == {("sizes", -1), ("square", 0), ("square", 1), ("square", 2), ("total", -1)}, states
    values: dict[tuple[str, int], Any] = {(x.task_id, x.map_index): json.loads(x.value) for x in xcoms}
    assert values == {("sizes", -1): [2, 3, 4], ("square", 0): 4, ("square", 1): 9, ("square", 2): 16,
                      ("total", -1): 29}  # fmt: skip
    # One pod per instance, labelled with its map_index (the executor deletes a pod once its try has ended).
    square = [m for m in fake_kubernetes.created() if m["labels"].get("spinner.io/task-id") == "square"]
    assert sorted(m["labels"].get("spinner.io/map-index", "") for m in square) == ["0", "1", "2"], square
    assert len({m["name"] for m in square}) == 3, square

"""Instances of mapped tasks run by the real executor (local backend, real runner processes) on SQLite and
MariaDB, their rows set as the scheduler sets them when it expands a task (docs/adr/0007): each instance
gets its own item (a literal, or an item of an upstream task's output), renders `{{ ti.map_index }}`, pushes
its own XCom, writes its own log; a downstream task gets the list (the reduce); an upstream output that is
not a list fails the instance without retry, saying why."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import textwrap
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.executor.__main__ import serve
from spinner.config import ExecutorSettings
from spinner.db.models import DagRun, RenderedTaskInstanceFields, TaskInstance, TaskInstanceHistory, XCom
from spinner.logpaths import complete_marker, local_log_path
from spinner.v1 import common_pb2, executor_pb2, executor_pb2_grpc
from tests.service_calls import service_channel

NOW = dt.datetime.now(dt.UTC)
PARTITION = "spinner_tier_1_0"
FILELOC = f"{PARTITION}/team/mapped.py"
DAG_FILE = """
from spinner import DAG, BashOperator, Tier, task

with DAG(dag_id="mapped", tier=Tier.TIER1) as dag:

    @task
    def numbers():
        return [1, 2]

    @task
    def double(x, factor):
        print(f"doubling {x}")
        return x * factor

    @task
    def total(values):
        return sum(values)

    @task
    def not_a_list():
        return 5

    @task
    def explode(x):
        return x

    total(double.partial(factor=10).expand(x=numbers()))
    BashOperator.partial(task_id="echo").expand(
        bash_command=["echo item-a {{ ti.map_index }}", "echo item-b {{ ti.map_index }}"]
    )
    explode.expand(x=not_a_list())
"""
Instance = tuple[str, int]


@dataclass
class Executor:
    stub: executor_pb2_grpc.ExecutorServiceStub
    sessions: async_sessionmaker[AsyncSession]
    log_dir: Path

    async def run(self, *instances: Instance, timeout: float = 60) -> None:
        """Queues the instances (try 1) as the scheduler does, submits them at once, waits for their ends."""
        async with self.sessions() as s, s.begin():
            for task_id, map_index in instances:
                ti = await s.get(TaskInstance, ("mapped", "r", task_id, map_index))
                assert ti is not None
                ti.state, ti.try_number, ti.queued_at = "queued", 1, dt.datetime.now(dt.UTC)
        tries = []
        for task_id, map_index in instances:
            pb = common_pb2.TaskTryKey(dag_id="mapped", run_id="r", task_id=task_id, try_number=1)
            if map_index >= 0:
                pb.map_index = map_index
            tries.append(executor_pb2.SubmitRequest(key=pb, partition=PARTITION, bundle_version="v1",
                                                    relative_fileloc=FILELOC))  # fmt: skip
        reply = await self.stub.SubmitMany(executor_pb2.SubmitManyRequest(tries=tries), timeout=30)
        assert [(r.code, r.launched) for r in reply.results] == [(0, True)] * len(instances), reply
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            states = await self.states()
            if all(states[i] in ("success", "failed", "up_for_retry") for i in instances):
                break
            assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {instances}: {states}"
            await asyncio.sleep(0.1)
        for task_id, map_index in instances:  # the executor closes a log once the process has exited
            path = local_log_path(self.log_dir, "mapped", "r", task_id, 1, map_index)
            while not complete_marker(path).exists():
                assert asyncio.get_running_loop().time() < deadline, f"the log of {task_id}[{map_index}] never closed"
                await asyncio.sleep(0.05)

    async def states(self) -> dict[Instance, str | None]:
        async with self.sessions() as s:
            return {(t.task_id, t.map_index): t.state for t in (await s.execute(select(TaskInstance))).scalars()}

    def log(self, task_id: str, map_index: int) -> str:
        return local_log_path(self.log_dir, "mapped", "r", task_id, 1, map_index).read_text()


@pytest.fixture
async def executor(sessions: async_sessionmaker[AsyncSession], db_url: str, tmp_path: Path) -> AsyncIterator[Executor]:
    settings = ExecutorSettings(
        home=tmp_path,
        database_url=db_url,
        port=0,
        backend="local",
        runner_heartbeat_interval=1,
        local_tries_on_stop="stop",  # a test's tasks end with it
    )
    dag_file = settings.snapshot_root / "versions" / "v1" / FILELOC
    dag_file.parent.mkdir(parents=True)
    dag_file.write_text(textwrap.dedent(DAG_FILE))
    rows: Sequence[Instance] = [("numbers", -1), ("double", 0), ("double", 1), ("total", -1), ("echo", 0),
                                ("echo", 1), ("not_a_list", -1), ("explode", 0)]  # fmt: skip
    async with sessions() as s, s.begin():
        s.add(DagRun(dag_id="mapped", run_id="r", run_type="manual", state="running", logical_date=NOW, conf={},
                     partition=PARTITION, created_at=NOW))  # fmt: skip
        for task_id, map_index in rows:
            s.add(TaskInstance(dag_id="mapped", run_id="r", task_id=task_id, map_index=map_index, partition=PARTITION,
                               state=None, try_number=0, max_tries=1))  # fmt: skip
    stop = asyncio.Event()
    ready: list[str] = []
    server = asyncio.create_task(serve(settings, stop, ready=ready.append))
    try:
        while not ready:
            assert not server.done(), "the executor stopped at start"
            await asyncio.sleep(0.05)
        async with service_channel(ready[0], settings.identities, "scheduler") as channel:
            yield Executor(executor_pb2_grpc.ExecutorServiceStub(channel), sessions, settings.log_dir)
    finally:
        stop.set()
        await server


async def test_each_instance_gets_its_item_pushes_its_own_xcom_and_the_reduce_gets_the_list(
    executor: Executor, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await executor.run(("numbers", -1), ("echo", 0), ("echo", 1))
    await executor.run(("double", 0), ("double", 1))  # the scheduler expanded double over numbers' 2 items
    await executor.run(("total", -1))
    states = await executor.states()
    ran = [("numbers", -1), ("echo", 0), ("echo", 1), ("double", 0), ("double", 1), ("total", -1)]
    assert {i: states[i] for i in ran} == dict.fromkeys(ran, "success")
    async with sessions() as s:
        xcoms = {(x.task_id, x.map_index): json.loads(x.value) for x in (await s.execute(select(XCom))).scalars()}
        rendered = {
            (r.task_id, r.map_index): json.loads(r.rendered_fields)
            for r in (await s.execute(select(RenderedTaskInstanceFields))).scalars()
        }
        history = sorted(
            (h.task_id, h.map_index, h.state) for h in (await s.execute(select(TaskInstanceHistory))).scalars()
        )
    assert xcoms[("double", 0)] == 10 and xcoms[("double", 1)] == 20  # 1 * 10, 2 * 10: each its own item
    assert xcoms[("total", -1)] == 30  # the downstream task got [10, 20]
    assert xcoms[("echo", 0)] == "item-a 0" and xcoms[("echo", 1)] == "item-b 1"
    assert rendered[("echo", 0)]["bash_command"] == "echo item-a 0"
    assert rendered[("echo", 1)]["bash_command"] == "echo item-b 1"
    assert rendered[("double", 1)]["op_kwargs"] == {"factor": 10, "x": 2}
    assert [h for h in history if h[0] in ("double", "echo")] == [
        ("double", 0, "success"), ("double", 1, "success"), ("echo", 0, "success"), ("echo", 1, "success"),
    ]  # fmt: skip
    assert "doubling 1" in executor.log("double", 0) and "doubling 2" not in executor.log("double", 0)
    assert "doubling 2" in executor.log("double", 1)
    assert "map_index 1" in executor.log("echo", 1) and "item-b 1" in executor.log("echo", 1)


async def test_an_upstream_output_that_is_not_a_list_fails_the_instance_saying_why(executor: Executor) -> None:
    await executor.run(("not_a_list", -1))
    await executor.run(("explode", 0))
    async with executor.sessions() as s:
        ti = await s.get(TaskInstance, ("mapped", "r", "explode", 0))
    assert ti is not None
    assert ti.state == "failed" and ti.try_number == 1  # max_tries 1, yet no retry: trying again cannot help
    why = "mapped argument 'x': the XCom 'return_value' of task 'not_a_list' is int, not a list or dict"
    assert why in ti.error and "mapped task 'explode', instance 0" in ti.error
    log = executor.log("explode", 0)
    assert f"task failed without retry: mapped task 'explode', instance 0: {why}" in log
    assert "Traceback" not in log

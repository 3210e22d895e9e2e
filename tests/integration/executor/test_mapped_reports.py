"""Instances of one mapped task through the executor's RunnerService over real gRPC, on SQLite and MariaDB:
each instance starts, heartbeats, renders, pushes and ends on its own row, with its own history, XCom and
rendered fields, and never disturbs its siblings (docs/adr/0007-dynamic-task-mapping.md)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.executor.engine import Executor
from services.executor.server import RunnerServicer
from services.executor.tokens import TokenSigner
from spinner.db.models import DagRun, RenderedTaskInstanceFields, TaskInstance, TaskInstanceHistory, XCom
from spinner.events import NullBus
from spinner.v1 import common_pb2, executor_pb2, executor_pb2_grpc

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
SIGNER = TokenSigner("mapped-secret")


def key(task_id: str, map_index: int | None = None, try_number: int = 1) -> common_pb2.TaskTryKey:
    pb = common_pb2.TaskTryKey(dag_id="d", run_id="r", task_id=task_id, try_number=try_number)
    if map_index is not None:
        pb.map_index = map_index
    return pb


def token(pb: common_pb2.TaskTryKey) -> str:
    return SIGNER.sign(
        pb.dag_id, pb.run_id, pb.task_id, pb.try_number, pb.map_index if pb.HasField("map_index") else -1
    )


@dataclass
class Runner:
    """Calls the RunnerService as a runner of one try does, with that try's token."""

    stub: executor_pb2_grpc.RunnerServiceStub

    async def start(self, pb: common_pb2.TaskTryKey) -> None:
        await self.stub.Start(executor_pb2.RunnerStartRequest(key=pb, token=token(pb), hostname="h", pid=1))

    async def push(self, pb: common_pb2.TaskTryKey, value: object, xcom_key: str = "return_value") -> None:
        await self.stub.PushXCom(
            executor_pb2.RunnerPushXComRequest(key=pb, token=token(pb), xcom_key=xcom_key, value_json=json.dumps(value))
        )

    async def pull(self, pb: common_pb2.TaskTryKey, *task_ids: str) -> list[tuple[str, int, bool, object]]:
        reply = await self.stub.PullXCom(
            executor_pb2.RunnerPullXComRequest(key=pb, token=token(pb), task_ids=task_ids, xcom_key="return_value")
        )
        return [(i.task_id, i.map_index, i.found, json.loads(i.value_json) if i.found else None) for i in reply.items]

    async def finish(
        self, pb: common_pb2.TaskTryKey, outcome: executor_pb2.TaskOutcome, skip: tuple[str, ...] = ()
    ) -> str:
        error = "" if outcome == executor_pb2.TASK_OUTCOME_SUCCESS else "boom"
        request = executor_pb2.RunnerFinishRequest(key=pb, token=token(pb), outcome=outcome, error=error,
                                                   skip_task_ids=skip)  # fmt: skip
        reply = await self.stub.Finish(request)
        return str(reply.state)


async def _seed(sessions: async_sessionmaker[AsyncSession], rows: dict[tuple[str, int], str | None]) -> None:
    async with sessions() as s, s.begin():
        s.add(DagRun(dag_id="d", run_id="r", run_type="manual", state="running", logical_date=NOW, conf={},
                     partition="p", created_at=NOW))  # fmt: skip
        for (task_id, map_index), state in rows.items():
            s.add(TaskInstance(dag_id="d", run_id="r", task_id=task_id, map_index=map_index, partition="p",
                               state=state, try_number=1 if state else 0, max_tries=1, queued_at=NOW))  # fmt: skip


async def _tis(sessions: async_sessionmaker[AsyncSession]) -> dict[tuple[str, int], TaskInstance]:
    async with sessions() as s:
        return {(t.task_id, t.map_index): t for t in (await s.execute(select(TaskInstance))).scalars()}


@pytest.fixture
async def runner(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> AsyncIterator[Runner]:
    executor = Executor(
        sessions=sessions, signer=SIGNER, bus=NullBus(), snapshot_root=tmp_path / "snapshots",
        log_dir=tmp_path / "logs", name="exec-a", clock=lambda: NOW + dt.timedelta(seconds=5),
    )  # fmt: skip
    server = grpc.aio.server()
    executor_pb2_grpc.add_RunnerServiceServicer_to_server(RunnerServicer(executor), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Runner(executor_pb2_grpc.RunnerServiceStub(channel))
    finally:
        await server.stop(None)
        await executor.reports.aclose()


async def test_two_instances_run_side_by_side_each_on_its_own_row(
    sessions: async_sessionmaker[AsyncSession], runner: Runner
) -> None:
    await _seed(sessions, {("m", 0): "queued", ("m", 1): "queued", ("m", 2): "queued", ("reduce", -1): "queued"})
    zero, one = key("m", 0), key("m", 1)
    await runner.start(zero)
    await runner.start(one)
    for pb, command in ((zero, "echo a"), (one, "echo b")):
        await runner.stub.SetRenderedFields(executor_pb2.RunnerSetRenderedFieldsRequest(
            key=pb, token=token(pb), fields_json=json.dumps({"bash_command": command})))  # fmt: skip
    await runner.push(zero, "a")
    await runner.push(one, "b")
    await runner.push(one, 1, xcom_key="extra")
    beat = await runner.stub.Heartbeat(executor_pb2.RunnerHeartbeatRequest(key=one, token=token(one)))
    assert beat.keep_running
    assert await runner.finish(zero, executor_pb2.TASK_OUTCOME_SUCCESS) == "success"
    assert await runner.finish(one, executor_pb2.TASK_OUTCOME_FAILED) == "up_for_retry"

    tis = await _tis(sessions)
    assert (tis[("m", 0)].state, tis[("m", 1)].state, tis[("m", 2)].state) == ("success", "up_for_retry", "queued")
    assert tis[("m", 1)].error == "boom" and tis[("m", 0)].error == ""
    async with sessions() as s:
        history = (await s.execute(select(TaskInstanceHistory))).scalars().all()
        rendered = (await s.execute(select(RenderedTaskInstanceFields))).scalars().all()
        xcoms = (await s.execute(select(XCom))).scalars().all()
    assert sorted((h.task_id, h.map_index, h.try_number, h.state) for h in history) == [
        ("m", 0, 1, "success"), ("m", 1, 1, "up_for_retry"),
    ]  # fmt: skip
    assert {(r.map_index, json.loads(r.rendered_fields)["bash_command"]) for r in rendered} == {
        (0, "echo a"),
        (1, "echo b"),
    }
    assert sorted((x.task_id, x.map_index, x.key, x.value) for x in xcoms) == [
        ("m", 0, "return_value", '"a"'), ("m", 1, "extra", "1"), ("m", 1, "return_value", '"b"'),
    ]  # fmt: skip

    # The retry of instance 1 starts without instance 1's XComs; instance 0 keeps its own.
    async with sessions() as s, s.begin():
        row = await s.get(TaskInstance, ("d", "r", "m", 1))
        assert row is not None
        row.state, row.try_number = "queued", 2
    await runner.start(key("m", 1, try_number=2))
    async with sessions() as s:
        left = sorted((x.map_index, x.key) for x in (await s.execute(select(XCom))).scalars())
    assert left == [(0, "return_value")]
    assert (await _tis(sessions))[("m", 1)].state == "running"


async def test_pulling_a_mapped_task_gives_one_item_per_instance_that_pushed_in_order(
    sessions: async_sessionmaker[AsyncSession], runner: Runner
) -> None:
    await _seed(sessions, {("m", i): "queued" for i in range(4)} | {("solo", -1): "queued", ("reduce", -1): "queued"})
    for i in (2, 0, 3):  # instance 1 pushes nothing
        pb = key("m", i)
        await runner.start(pb)
        await runner.push(pb, {"n": i})
        await runner.finish(pb, executor_pb2.TASK_OUTCOME_SUCCESS)
    await runner.start(key("solo"))
    await runner.push(key("solo"), [1, 2])
    reduce = key("reduce")
    await runner.start(reduce)
    assert await runner.pull(reduce, "solo", "m", "never") == [
        ("solo", -1, True, [1, 2]),
        ("m", 0, True, {"n": 0}), ("m", 2, True, {"n": 2}), ("m", 3, True, {"n": 3}),
        ("never", -1, False, None),
    ]  # fmt: skip
    # The unmapped row of a mapped task is not one of its instances: a key without map_index names none of them.
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await runner.stub.Start(executor_pb2.RunnerStartRequest(key=key("m"), token=token(key("m")), hostname="h"))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_an_instances_token_speaks_for_that_instance_only(
    sessions: async_sessionmaker[AsyncSession], runner: Runner
) -> None:
    await _seed(sessions, {("m", 0): "queued", ("m", 1): "queued"})
    await runner.start(key("m", 0))
    with pytest.raises(grpc.aio.AioRpcError) as e:  # instance 0's token, instance 1's key
        await runner.stub.Start(executor_pb2.RunnerStartRequest(key=key("m", 1), token=token(key("m", 0))))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as e:  # instance 1 is not running: it may not push
        await runner.push(key("m", 1), "x")
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "m[1]" in (e.value.details() or "")
    tis = await _tis(sessions)
    assert (tis[("m", 0)].state, tis[("m", 1)].state) == ("running", "queued")


async def test_a_branch_that_skips_a_mapped_task_skips_every_instance_left_to_run(
    sessions: async_sessionmaker[AsyncSession], runner: Runner
) -> None:
    rows: dict[tuple[str, int], str | None] = {("pick", -1): "queued", ("fan", -1): None, ("other", 0): None,
                                               ("other", 1): None, ("other", 2): "success"}  # fmt: skip
    await _seed(sessions, rows)
    await runner.start(key("pick"))
    assert await runner.finish(key("pick"), executor_pb2.TASK_OUTCOME_SUCCESS, skip=("fan", "other")) == "success"
    tis = await _tis(sessions)
    assert tis[("fan", -1)].state == "skipped"  # not expanded yet: its one row
    assert (tis[("other", 0)].state, tis[("other", 1)].state) == ("skipped", "skipped")
    assert tis[("other", 2)].state == "success"  # ended already: left alone
    assert "Skipped by pick (try 1)" in tis[("other", 0)].error


async def test_another_dags_sensor_sees_a_mapped_task_done_only_when_every_instance_is(
    sessions: async_sessionmaker[AsyncSession], runner: Runner
) -> None:
    await _seed(sessions, {("sensor", -1): "queued", ("m", 0): "success", ("m", 1): "running", ("m", 2): "queued"})
    sensor = key("sensor")
    await runner.start(sensor)

    async def state_of_m() -> str:
        reply = await runner.stub.GetTaskState(executor_pb2.RunnerGetTaskStateRequest(
            key=sensor, token=token(sensor), dag_id="d", logical_date=NOW.isoformat(), task_id="m"))  # fmt: skip
        assert reply.found
        return str(reply.state)

    assert await state_of_m() == "running"  # instance 0 succeeded, the others have not: not done
    for i, state in ((1, "success"), (2, "skipped")):
        async with sessions() as s, s.begin():
            row = await s.get(TaskInstance, ("d", "r", "m", i))
            assert row is not None
            row.state = state
    assert await state_of_m() == "success"
    async with sessions() as s, s.begin():
        row = await s.get(TaskInstance, ("d", "r", "m", 2))
        assert row is not None
        row.state = "failed"
    assert await state_of_m() == "failed"

"""The logs service over real gRPC: a try's local log file, read by line offset, with clear errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.logs.__main__ import serve
from spinner.config import LogsSettings
from spinner.logpaths import complete_marker, local_log_path
from spinner.mapping import key_map_index
from spinner.v1 import common_pb2, logs_pb2, logs_pb2_grpc
from tests.service_calls import service_channel

KEY = common_pb2.TaskTryKey(dag_id="etl", run_id="manual__1", task_id="extract", try_number=1)


@dataclass
class Logs:
    stub: logs_pb2_grpc.LogsServiceStub
    channel: grpc.aio.Channel
    log_dir: Path

    def write(self, text: str, *, done: bool, key: common_pb2.TaskTryKey = KEY) -> Path:
        path = local_log_path(self.log_dir, key.dag_id, key.run_id, key.task_id, key.try_number, key_map_index(key))
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(text)
        if done:
            complete_marker(path).touch()
        return path

    async def read(self, offset: int = 0, max_lines: int = 0) -> logs_pb2.ReadLogResponse:
        reply: logs_pb2.ReadLogResponse = await self.stub.Read(
            logs_pb2.ReadLogRequest(key=KEY, from_offset=offset, max_lines=max_lines), timeout=5
        )
        return reply


@pytest.fixture
async def logs(tmp_path: Path) -> AsyncIterator[Logs]:
    settings = LogsSettings(home=tmp_path, port=0)
    stop = asyncio.Event()
    address: list[str] = []
    service = asyncio.create_task(serve(settings, stop, ready=address.append))
    while not address:
        assert not service.done(), "the logs service stopped at start"
        await asyncio.sleep(0.02)
    try:
        async with service_channel(address[0], settings.identities) as ch:
            yield Logs(logs_pb2_grpc.LogsServiceStub(ch), ch, settings.log_dir)
    finally:
        stop.set()
        await service


async def test_reports_serving_once_started(logs: Logs) -> None:
    reply = await health_pb2_grpc.HealthStub(logs.channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reads_an_ended_try_from_an_offset(logs: Logs) -> None:
    logs.write("one\ntwo\nthree\n", done=True)
    whole = await logs.read()
    assert [(line.offset, line.text) for line in whole.lines] == [(0, "one"), (1, "two"), (2, "three")]
    assert (whole.next_offset, whole.source, whole.complete) == (3, "local", True)
    rest = await logs.read(offset=2)
    assert [line.text for line in rest.lines] == ["three"] and rest.lines[0].offset == 2
    past = await logs.read(offset=10)
    assert list(past.lines) == [] and past.next_offset == 10 and past.complete


async def test_max_lines_pages_and_complete_only_with_the_last_page(logs: Logs) -> None:
    logs.write("".join(f"line {i}\n" for i in range(5)), done=True)
    first = await logs.read(max_lines=2)
    assert [line.text for line in first.lines] == ["line 0", "line 1"]
    assert first.next_offset == 2 and not first.complete
    second = await logs.read(offset=first.next_offset, max_lines=2)
    third = await logs.read(offset=second.next_offset, max_lines=2)
    assert [line.text for line in third.lines] == ["line 4"] and third.complete


async def test_a_running_try_withholds_its_unfinished_line(logs: Logs) -> None:
    logs.write("started\nhalf a li", done=False)
    running = await logs.read()
    assert [line.text for line in running.lines] == ["started"]
    assert running.next_offset == 1 and not running.complete
    logs.write("ne\n", done=False)
    more = await logs.read(offset=running.next_offset)
    assert [line.text for line in more.lines] == ["half a line"] and not more.complete
    logs.write("last words without newline", done=True)
    end = await logs.read(offset=more.next_offset)
    assert [line.text for line in end.lines] == ["last words without newline"] and end.complete


async def test_missing_log_is_not_found_naming_the_try(logs: Logs) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await logs.read()
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no log for etl.extract run manual__1 try 1" in (e.value.details() or "")


@pytest.mark.parametrize(
    ("key", "offset", "message"),
    [
        (common_pb2.TaskTryKey(dag_id="", run_id="r", task_id="t", try_number=1), 0, "are required"),
        (common_pb2.TaskTryKey(dag_id="d", run_id="r", task_id="", try_number=1), 0, "are required"),
        (common_pb2.TaskTryKey(dag_id="d", run_id="r", task_id="t", try_number=0), 0, "try_number"),
        (common_pb2.TaskTryKey(dag_id="d", run_id="r", task_id="t", try_number=1), -1, "from_offset"),
    ],
)
async def test_bad_requests_are_invalid_argument(
    logs: Logs, key: common_pb2.TaskTryKey, offset: int, message: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await logs.stub.Read(logs_pb2.ReadLogRequest(key=key, from_offset=offset), timeout=5)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (e.value.details() or "")


async def test_a_log_of_long_lines_comes_in_pages_a_grpc_client_accepts(logs: Logs) -> None:
    """6,000 lines of 1,000 characters (6 MB) would not fit one 4 MiB gRPC message: pages stop at ~1 MiB."""
    logs.write("".join(f"{i:05d} " + "x" * 994 + "\n" for i in range(6000)), done=True)
    first = await logs.read()
    assert 0 < len(first.lines) < 6000 and not first.complete
    assert sum(len(line.text) for line in first.lines) <= 1 << 20
    seen = [line.offset for line in first.lines]
    async for chunk in logs.stub.Follow(logs_pb2.FollowLogRequest(key=KEY, from_offset=first.next_offset), timeout=30):
        seen += [line.offset for line in chunk.lines]
        if chunk.complete:
            break
    assert seen == list(range(6000))


async def test_an_instance_of_a_mapped_task_is_read_by_its_map_index(logs: Logs) -> None:
    """Each instance has a file of its own (`.../map_index=<i>/attempt=<n>.log`); the unmapped key reads its own."""
    instances = {i: common_pb2.TaskTryKey(dag_id="etl", run_id="manual__1", task_id="extract", try_number=1,
                                          map_index=i) for i in (0, 1)}  # fmt: skip
    for i, key in instances.items():
        path = logs.write(f"instance {i} says hello\n", done=True, key=key)
        assert path.parent.name == f"map_index={i}"
    for i, key in instances.items():
        reply = await logs.stub.Read(logs_pb2.ReadLogRequest(key=key), timeout=5)
        assert [line.text for line in reply.lines] == [f"instance {i} says hello"] and reply.complete
    with pytest.raises(grpc.aio.AioRpcError) as e:  # the task's unmapped row never ran: no log of its own
        await logs.read()
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as e:
        missing = common_pb2.TaskTryKey(dag_id="etl", run_id="manual__1", task_id="extract", try_number=1, map_index=2)
        await logs.stub.Read(logs_pb2.ReadLogRequest(key=missing), timeout=5)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no log for etl.extract[2] run manual__1 try 1" in (e.value.details() or "")
    bad = common_pb2.TaskTryKey(dag_id="etl", run_id="manual__1", task_id="extract", try_number=1, map_index=-2)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await logs.stub.Read(logs_pb2.ReadLogRequest(key=bad), timeout=5)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "map_index" in (e.value.details() or "")

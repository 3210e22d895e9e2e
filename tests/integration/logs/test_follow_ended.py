"""A follow of a log that is never marked complete (its process was killed while no executor watched)
ends once its try has ended, as the database says, on SQLite and MariaDB: the logs service over real
gRPC and a real database."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.logs.__main__ import serve
from services.logs.engine import ENDED_UNMARKED
from spinner.config import LogsSettings
from spinner.db.models import DagCallback, DagRun, TaskInstance
from spinner.logpaths import complete_marker, local_log_path
from spinner.v1 import common_pb2, logs_pb2, logs_pb2_grpc
from tests.service_calls import service_channel

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
QUIET = 0.5  # the service's follow_ended_quiet here
EVERY = 0.2  # its follow_state_interval
TASK = common_pb2.TaskTryKey(dag_id="etl", run_id="manual__1", task_id="extract", try_number=1, map_index=-1)


@dataclass
class Service:
    stub: logs_pb2_grpc.LogsServiceStub
    log_dir: Path
    sessions: async_sessionmaker[AsyncSession]

    def write(self, key: common_pb2.TaskTryKey, text: str) -> Path:
        path = local_log_path(self.log_dir, key.dag_id, key.run_id, key.task_id, key.try_number, key.map_index)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(text)
        return path

    async def set_ti(self, **values: Any) -> None:
        async with self.sessions() as s, s.begin():
            await s.execute(update(TaskInstance).where(TaskInstance.task_id == TASK.task_id).values(**values))


@pytest.fixture
async def service(tmp_path: Path, db_url: str, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Service]:
    async with sessions() as s, s.begin():
        s.add(DagRun(dag_id="etl", run_id="manual__1", run_type="manual", state="running", logical_date=NOW,
                     partition="p", created_at=NOW))  # fmt: skip
        s.add(TaskInstance(dag_id="etl", run_id="manual__1", task_id="extract", partition="p", state="running",
                           try_number=1, start_date=NOW))  # fmt: skip
    settings = LogsSettings(
        home=tmp_path, database_url=db_url, port=0, follow_interval=0.05,
        follow_ended_quiet=QUIET, follow_state_interval=EVERY,
    )  # fmt: skip
    stop = asyncio.Event()
    address: list[str] = []
    task = asyncio.create_task(serve(settings, stop, ready=address.append))
    deadline = asyncio.get_running_loop().time() + 20
    while not address:
        assert not task.done() and asyncio.get_running_loop().time() < deadline, "the logs service did not start"
        await asyncio.sleep(0.02)
    try:
        async with service_channel(address[0], settings.identities) as ch:
            yield Service(logs_pb2_grpc.LogsServiceStub(ch), settings.log_dir, sessions)
    finally:
        stop.set()
        await task


class Follow:
    """One Follow call, read chunk by chunk, with what it saw kept for failure messages."""

    def __init__(self, stub: logs_pb2_grpc.LogsServiceStub, key: common_pb2.TaskTryKey) -> None:
        self.call = stub.Follow(logs_pb2.FollowLogRequest(key=key, from_offset=0), timeout=60)
        self.seen: list[logs_pb2.ReadLogResponse] = []
        self._next: asyncio.Future[Any] | None = None

    def lines(self) -> list[str]:
        return [line.text for chunk in self.seen for line in chunk.lines]

    async def next(self, timeout: float) -> logs_pb2.ReadLogResponse | None:
        """The next chunk, or None when none came within `timeout` (the read stays pending for the next call)."""
        self._next = self._next or asyncio.ensure_future(self.call.read())
        done, _ = await asyncio.wait({self._next}, timeout=timeout)
        if not done:
            return None
        reply, self._next = self._next.result(), None
        assert reply is not grpc.aio.EOF, f"the follow ended without a complete chunk; saw {self.seen}"
        self.seen.append(reply)
        return reply  # type: ignore[no-any-return]

    async def until(self, check: Any, timeout: float, what: str) -> logs_pb2.ReadLogResponse:
        deadline = asyncio.get_running_loop().time() + timeout
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            reply = await self.next(left)
            if reply is not None and check(reply):
                return reply
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; saw {self.seen}")

    def close(self) -> None:
        if self._next is not None:
            self._next.cancel()
        self.call.cancel()


async def _stays_open(follow: Follow, seconds: float) -> None:
    """Nothing complete comes for `seconds` (a try that goes on must not end its follow)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        reply = await follow.next(left)
        assert reply is None or not reply.complete, f"the follow ended while its try goes on; saw {follow.seen}"


@pytest.mark.parametrize(
    "ended",
    [
        pytest.param({"state": "success", "end_date": NOW}, id="ended-success"),
        pytest.param({"state": "running", "try_number": 2}, id="a-retry-began"),
    ],
)
async def test_a_follow_ends_once_the_try_has_ended_though_its_log_has_no_marker(
    service: Service, ended: dict[str, Any]
) -> None:
    path = service.write(TASK, "one\ntwo\n")
    follow = Follow(service.stub, TASK)
    try:
        await follow.until(lambda _: follow.lines() == ["one", "two"], 10, "the lines written so far")
        # Running, then between two pokes of a sensor: the try goes on, and so does its follow.
        await _stays_open(follow, QUIET + 5 * EVERY)
        await service.set_ti(state="up_for_reschedule", reschedule_at=NOW)
        await _stays_open(follow, 5 * EVERY)
        service.write(TASK, "three\n")  # the next poke writes on
        await follow.until(lambda _: follow.lines()[-1:] == ["three"], 10, "the line written later")
        await service.set_ti(reschedule_at=None, **ended)
        last = await follow.until(lambda r: r.complete, 10, "the follow to end")
    finally:
        follow.close()
    assert follow.lines() == ["one", "two", "three"] and not complete_marker(path).exists()
    assert (last.source, last.next_offset) == ("local", 3)
    assert ENDED_UNMARKED in last.fallback_reason and "marked complete" in last.fallback_reason
    assert all(not chunk.complete and not chunk.fallback_reason for chunk in follow.seen[:-1]), follow.seen


async def test_a_dag_callback_s_follow_ends_once_its_callback_has_ended(service: Service) -> None:
    async with service.sessions() as s, s.begin():
        row = DagCallback(dag_id="etl", run_id="manual__1", partition="p", kind="on_success_callback",
                          state="running", details={}, created_at=NOW, started_at=NOW, executor="e", error="")  # fmt: skip
        s.add(row)
    key = common_pb2.TaskTryKey(dag_id="etl", run_id="manual__1", task_id="callback:on_success_callback",
                                try_number=row.id, map_index=-1)  # fmt: skip
    service.write(key, "calling back\n")
    follow = Follow(service.stub, key)
    try:
        await follow.until(lambda _: follow.lines() == ["calling back"], 10, "the callback's line")
        await _stays_open(follow, QUIET + 5 * EVERY)
        async with service.sessions() as s, s.begin():
            await s.execute(update(DagCallback).where(DagCallback.id == row.id).values(state="success"))
        last = await follow.until(lambda r: r.complete, 10, "the follow to end")
    finally:
        follow.close()
    assert ENDED_UNMARKED in last.fallback_reason

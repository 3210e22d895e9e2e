"""SubmitMany over real gRPC: a pass's worth of tries in one call, each answered on its own."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import grpc
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.executor.__main__ import serve
from spinner.config import ExecutorSettings
from spinner.db.models import DagRun, PartitionLease, TaskInstance
from spinner.v1 import common_pb2, executor_pb2, executor_pb2_grpc
from tests.service_calls import service_channel

NOW = dt.datetime.now(dt.UTC)


async def test_each_try_gets_its_own_answer(
    sessions: async_sessionmaker[AsyncSession], db_url: str, tmp_path: Path
) -> None:
    async with sessions() as s, s.begin():
        s.add(DagRun(dag_id="d", run_id="r", run_type="manual", state="running", logical_date=NOW, conf={},
                     partition="p", created_at=NOW))  # fmt: skip
        s.add(PartitionLease(partition="p", holder="h", address="", epoch=5, expires_at=NOW + dt.timedelta(hours=1)))
        for task_id in ("ok", "other"):
            s.add(TaskInstance(dag_id="d", run_id="r", task_id=task_id, partition="p", state="queued",
                               try_number=1, max_tries=0, queued_at=NOW))  # fmt: skip
    stop = asyncio.Event()
    ready: list[str] = []
    settings = ExecutorSettings(home=tmp_path, database_url=db_url, port=0, backend="instant")
    server = asyncio.create_task(serve(settings, stop, ready=ready.append))
    try:
        while not ready:
            await asyncio.sleep(0.05)

        def item(task_id: str, try_number: int, epoch: int) -> executor_pb2.SubmitRequest:
            key = common_pb2.TaskTryKey(dag_id="d", run_id="r", task_id=task_id, try_number=try_number)
            return executor_pb2.SubmitRequest(key=key, partition="p", lease_epoch=epoch)

        async with service_channel(ready[0], settings.identities, "scheduler") as channel:
            reply = await executor_pb2_grpc.ExecutorServiceStub(channel).SubmitMany(
                executor_pb2.SubmitManyRequest(tries=[item("ok", 1, 5), item("other", 2, 5), item("other", 1, 4)]),
                timeout=30,
            )
        ok, wrong_try, stale = reply.results
        assert ok.code == 0 and ok.launched
        assert wrong_try.code == grpc.StatusCode.FAILED_PRECONDITION.value[0] and "not queued" in wrong_try.error
        assert stale.code == grpc.StatusCode.FAILED_PRECONDITION.value[0] and "stale" in stale.error

        async def states() -> dict[str, str | None]:
            async with sessions() as s:
                return {t.task_id: t.state for t in (await s.execute(select(TaskInstance))).scalars()}

        for _ in range(100):
            if (await states())["ok"] == "success":
                break
            await asyncio.sleep(0.05)
        assert await states() == {"ok": "success", "other": "queued"}  # the refused ones were not started
    finally:
        stop.set()
        await server

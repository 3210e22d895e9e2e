"""Every service answers gRPC health checks (SERVING once started), to anyone; reflection (grpcurl list)
only when `grpc_reflection` turns it on: it would map the internal API for any caller."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.dagsync.__main__ import serve as serve_dagsync
from services.logs.__main__ import serve as serve_logs
from spinner.config import DagSyncSettings, LogsSettings


async def _listed_services(address: str) -> list[str]:
    async with grpc.aio.insecure_channel(address) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)

        async def requests():  # type: ignore[no-untyped-def]
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        async for reply in stub.ServerReflectionInfo(requests()):
            return [s.name for s in reply.list_services_response.service]
    return []


async def _health(address: str) -> int:
    async with grpc.aio.insecure_channel(address) as ch:
        reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        return int(reply.status)


async def test_services_answer_health_to_anyone_and_reflection_only_when_turned_on(tmp_path: Path) -> None:
    (tmp_path / "repo" / "spinner_tier_1_0").mkdir(parents=True)
    stop = asyncio.Event()
    ready: dict[str, str] = {}
    tasks = [
        asyncio.create_task(
            serve_dagsync(
                DagSyncSettings(home=tmp_path, port=0, source_dir=tmp_path / "repo", grpc_reflection=True),
                stop,
                ready=lambda a: ready.__setitem__("dagsync", a),
            )
        ),
        asyncio.create_task(
            serve_logs(LogsSettings(home=tmp_path, port=0), stop, ready=lambda a: ready.__setitem__("logs", a))
        ),
    ]
    try:
        async with asyncio.timeout(20):
            while len(ready) < 2:
                await asyncio.sleep(0.02)
        for name in ("dagsync", "logs"):
            assert await _health(ready[name]) == health_pb2.HealthCheckResponse.SERVING
        listed = await _listed_services(ready["dagsync"])  # turned on
        assert "spinner.v1.DagSyncService" in listed and "grpc.health.v1.Health" in listed
        with pytest.raises(grpc.aio.AioRpcError) as off:  # the default
            await _listed_services(ready["logs"])
        # UNIMPLEMENTED, or INTERNAL when the client's first message meets the stream already closed.
        assert off.value.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INTERNAL), off.value
    finally:
        stop.set()
        await asyncio.gather(*tasks)

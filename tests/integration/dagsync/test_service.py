"""The dagsync service over S3: polls by itself, syncs on request (gRPC SyncNow) or on a push announced on MQTT,
says how stale it is during an outage and resumes without help."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.dagsync.__main__ import serve
from spinner import events
from spinner.config import DagSyncSettings
from spinner.events import MqttBus
from spinner.snapshots import current_snapshot
from spinner.v1 import dagsync_pb2, dagsync_pb2_grpc
from tests.service_calls import service_channel

from .conftest import PARTITION, Bucket, wait_for


def dag(name: str, n: int = 0) -> str:
    return f"from spinner import DAG, Tier\nwith DAG({name!r}, tier=Tier.TIER1) as dag:\n    pass\nN = {n}\n"


@dataclass
class Service:
    stub: dagsync_pb2_grpc.DagSyncServiceStub
    home: Path

    async def snapshot(self) -> dagsync_pb2.Snapshot:
        reply: dagsync_pb2.Snapshot = await self.stub.GetSnapshot(dagsync_pb2.GetSnapshotRequest(), timeout=10)
        return reply


@asynccontextmanager
async def _serve(settings: DagSyncSettings) -> AsyncIterator[Service]:
    stop = asyncio.Event()
    ready: dict[str, str] = {}
    task = asyncio.create_task(serve(settings, stop, ready=lambda a: ready.__setitem__("a", a)))
    try:
        await wait_for(lambda: "a" in ready or task.done(), 30, "dagsync ready")
        if task.done():
            task.result()
        async with service_channel(ready["a"], settings.identities) as channel:
            yield Service(dagsync_pb2_grpc.DagSyncServiceStub(channel), settings.home)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def settings_for(bucket: Bucket, tmp_path: Path, **extra: object) -> DagSyncSettings:
    return DagSyncSettings(
        home=tmp_path / "home", port=0, dags_bucket=bucket.location.bucket, dags_prefix=bucket.location.prefix,
        s3_endpoint_url=bucket.moto.endpoint, max_file_bytes=bucket.location.max_file_bytes, **extra,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_the_service_polls_reports_staleness_in_an_outage_and_resumes(bucket: Bucket, tmp_path: Path) -> None:
    bucket.write(f"{PARTITION}/ads/a.py", dag("a"))
    first = await bucket.push()
    async with _serve(settings_for(bucket, tmp_path, sync_interval=0.2)) as service:
        snap = await service.snapshot()
        assert snap.bundle_version == first.version and snap.last_error == "" and snap.file_count == 2
        assert snap.source.startswith("s3://") and snap.stale_seconds < 5
        bucket.write(f"{PARTITION}/ads/a.py", dag("a", 1))
        second = await bucket.push()

        async def has(version: str) -> bool:
            return (await service.snapshot()).bundle_version == version

        await wait_for(lambda: has(second.version), 10, "the poll picks up the new version")
        bucket.moto.stop()
        try:

            async def stale() -> bool:
                s = await service.snapshot()
                return s.stale_seconds > 1.0 and "unreachable" in s.last_error

            await wait_for(stale, 20, "the status says the snapshot is stale")
            snap = await service.snapshot()
            assert snap.bundle_version == second.version  # the last good snapshot stays
            current = current_snapshot(service.home / "snapshots")
            assert current is not None and current.version == second.version
        finally:
            bucket.moto.start()

        async def healthy() -> bool:
            s = await service.snapshot()
            return s.last_error == "" and s.stale_seconds < 1.0

        await wait_for(healthy, 20, "sync resumes by itself")
        bucket.write(f"{PARTITION}/ads/a.py", dag("a", 2))
        third = await bucket.push()
        await wait_for(lambda: has(third.version), 10, "new versions flow again")


async def test_sync_now_over_grpc_takes_a_push_at_once(bucket: Bucket, tmp_path: Path) -> None:
    bucket.write(f"{PARTITION}/ads/a.py", dag("a"))
    await bucket.push()
    async with _serve(settings_for(bucket, tmp_path, sync_interval=3600)) as service:
        bucket.write(f"{PARTITION}/ads/b.py", dag("b"))
        second = await bucket.push()
        assert (await service.snapshot()).bundle_version != second.version
        reply = await service.stub.SyncNow(dagsync_pb2.SyncNowRequest(), timeout=30)
        assert reply.bundle_version == second.version and reply.file_count == 3
        assert (service.home / "snapshots" / "current" / PARTITION / "ads" / "b.py").read_text() == dag("b")


@pytest.mark.mqtt
async def test_a_push_announced_on_mqtt_is_synced_and_announced_as_a_snapshot(
    bucket: Bucket, tmp_path: Path, mqtt_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from spinner.cli.main import main

    cluster = f"dagsync-{tmp_path.name}"
    monkeypatch.setenv("SPINNER_CLUSTER", cluster)
    bucket.write(f"{PARTITION}/ads/a.py", dag("a"))
    await bucket.push()
    listener_bus = MqttBus(mqtt_url, cluster)
    seen: list[dict[str, object]] = []

    async def listen() -> None:
        async for event in listener_bus.subscribe([events.SNAPSHOT]):
            if event.kind == events.SNAPSHOT:
                seen.append(event.payload)

    listener = asyncio.create_task(listen())
    try:
        async with _serve(
            settings_for(bucket, tmp_path, sync_interval=3600, mqtt_url=mqtt_url, cluster=cluster)
        ) as service:
            await asyncio.sleep(0.5)  # the service's subscription is up
            bucket.write(f"{PARTITION}/ads/a.py", dag("a", 1))
            argv = ["dags", "push", str(bucket.repo), "--bucket", bucket.location.bucket, "--prefix",
                    bucket.location.prefix, "--endpoint-url", bucket.moto.endpoint, "--mqtt-url", mqtt_url]  # fmt: skip
            assert await asyncio.to_thread(main, argv) == 0
            version = capsys.readouterr().out.strip().splitlines()[-1]

            async def has() -> bool:
                return (await service.snapshot()).bundle_version == version

            await wait_for(has, 10, "the announced push is synced without waiting for the interval")
            await wait_for(lambda: {"version": version} in seen, 10, "the new snapshot is announced")
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await listener_bus.aclose()

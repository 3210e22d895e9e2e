"""A real S3 API (moto's server over HTTP on a free port), a bucket per test, and helpers to publish to it."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from services.dagsync.engine import DagSync
from services.dagsync.metrics import DagSyncMetrics
from services.dagsync.snapshots import SnapshotStore
from services.dagsync.sources import S3Source
from spinner.bundles import S3Location, s3_client
from spinner.cli.push import PushResult, push
from spinner.events import EventBus, NullBus
from tests.fakes.s3 import Moto

PARTITION = "spinner_tier_1_0"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Bucket:
    """One test's bucket, a DAG repository folder to publish from, and a dagsync mirroring it."""

    moto: Moto
    location: S3Location
    client: Any
    repo: Path
    root: Path
    metric_reader: InMemoryMetricReader
    sync: DagSync
    pushes: list[PushResult] = field(default_factory=list)

    def write(self, rel: str, text: str) -> None:
        path = self.repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def remove(self, rel: str) -> None:
        (self.repo / rel).unlink()

    async def push(self, keep: int = 10) -> PushResult:
        result = await push(self.repo, self.location, self.client, keep=keep)
        self.pushes.append(result)
        return result

    async def put(self, key: str, body: bytes) -> None:
        await self.client.put_object(Bucket=self.location.bucket, Key=key, Body=body)

    async def get(self, key: str) -> bytes:
        response = await self.client.get_object(Bucket=self.location.bucket, Key=key)
        async with response["Body"] as body:
            data: bytes = await body.read()
        return data

    async def keys(self) -> set[str]:
        found: set[str] = set()
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.location.bucket):
            found.update(o["Key"] for o in page.get("Contents", []))
        return found

    def metric(self, name: str, **attributes: str) -> float:
        """Sum of a counter's points whose attributes include `attributes`."""
        data = self.metric_reader.get_metrics_data()
        total = 0.0
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        for p in metric.data.data_points:
                            if attributes.items() <= dict(p.attributes or {}).items():
                                total += getattr(p, "value", 0.0)
        return total


def make_sync(client: Any, location: S3Location, root: Path, reader: InMemoryMetricReader, bus: EventBus) -> DagSync:
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    metrics = DagSyncMetrics(meter, "s3")
    return DagSync(S3Source(client, location), SnapshotStore(root), bus, keep=3, clock=utcnow, metrics=metrics)


@pytest.fixture
async def bucket(moto: Moto, tmp_path: Path) -> AsyncIterator[Bucket]:
    location = S3Location(
        bucket=f"dags-{uuid.uuid4().hex[:12]}", prefix="team/dags", endpoint_url=moto.endpoint, max_file_bytes=64 * 1024
    )
    async with s3_client(location, read_timeout=5) as client:
        await client.create_bucket(Bucket=location.bucket)
        repo = tmp_path / "repo"
        (repo / "plugins").mkdir(parents=True)
        (repo / "plugins" / "helpers.py").write_text("GREETING = 'hi'\n")
        reader = InMemoryMetricReader()
        root = tmp_path / "snapshots"
        sync = make_sync(client, location, root, reader, NullBus())
        yield Bucket(moto, location, client, repo, root, reader, sync)


async def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for: {what}")

"""dagsync: settings -> lifespan -> serve."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack

from services.dagsync.engine import DagSync
from services.dagsync.in_use import versions_in_use
from services.dagsync.metrics import DagSyncMetrics
from services.dagsync.server import DagSyncServicer
from services.dagsync.snapshots import SnapshotStore
from services.dagsync.sources import DagSource, LocalFolderSource, S3Source
from spinner import events, rpcpolicy
from spinner.bundles import s3_client
from spinner.clock import utcnow
from spinner.config import DagSyncSettings
from spinner.db.engine import create_engine, session_factory
from spinner.events import Waker, make_bus, wake_on_events
from spinner.grpcserver import grpc_server, service_auth
from spinner.telemetry import Telemetry, setup_telemetry
from spinner.v1 import dagsync_pb2, dagsync_pb2_grpc

log = logging.getLogger(__name__)


async def _wake_on_stop(stop: asyncio.Event, waker: Waker) -> None:
    await stop.wait()
    waker.wake()


async def serve(
    settings: DagSyncSettings,
    stop: asyncio.Event,
    *,
    ready: Callable[[str], None] | None = None,
    telemetry: Telemetry | None = None,
) -> None:
    own_telemetry = telemetry is None
    telemetry = telemetry or setup_telemetry("dagsync", settings)
    bus = make_bus(settings.mqtt_url, settings.cluster)
    engine = create_engine(settings.database_url)  # read only: which versions runs still use
    try:
        async with AsyncExitStack() as stack:
            source: DagSource
            if settings.dags_bucket:
                location = settings.s3_location()
                source = S3Source(await stack.enter_async_context(s3_client(location)), location)
            else:
                source = LocalFolderSource(settings.source_dir.resolve())
            metrics = DagSyncMetrics(telemetry.meter("spinner.dagsync"), "s3" if settings.dags_bucket else "local")
            sync = DagSync(
                source, SnapshotStore(settings.snapshot_root), bus, keep=settings.keep_snapshots, clock=utcnow,
                metrics=metrics, in_use=versions_in_use(session_factory(engine)),
            )  # fmt: skip
            servicer = DagSyncServicer(sync)
            async with grpc_server(
                host=settings.host,
                port=settings.port,
                register=[lambda s: dagsync_pb2_grpc.add_DagSyncServiceServicer_to_server(servicer, s)],
                service_names=[dagsync_pb2.DESCRIPTOR.services_by_name["DagSyncService"].full_name],
                auth=service_auth("dagsync", settings.identities, rpcpolicy.DAGSYNC, session_factory(engine)),
                reflect=settings.grpc_reflection,
            ) as server:
                await sync.sync_once()
                await server.set_serving()
                log.info("dagsync serving on %s:%d, mirroring %s", settings.host, server.port, source.describe())
                if ready:
                    ready(f"{settings.host}:{server.port}")
                # A push announced on MQTT wakes the poll early; without a broker it is just the interval.
                waker = Waker()
                async with asyncio.TaskGroup() as tg:
                    listener = tg.create_task(wake_on_events(bus, [events.BUNDLE_PUBLISHED], waker))
                    stopper = tg.create_task(_wake_on_stop(stop, waker))
                    while not stop.is_set():
                        await waker.wait(settings.sync_interval)
                        if not stop.is_set():
                            await sync.sync_once()
                    listener.cancel()
                    stopper.cancel()
    finally:
        await bus.aclose()
        await engine.dispose()
        if own_telemetry:
            telemetry.shutdown()

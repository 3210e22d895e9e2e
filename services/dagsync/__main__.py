"""dagsync: settings -> lifespan -> serve."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from services.dagsync.engine import DagSync
from services.dagsync.server import DagSyncServicer
from services.dagsync.snapshots import SnapshotStore
from services.dagsync.sources import LocalFolderSource
from spinner.clock import utcnow
from spinner.config import DagSyncSettings
from spinner.events import make_bus
from spinner.grpcserver import grpc_server
from spinner.telemetry import setup_telemetry
from spinner.v1 import dagsync_pb2, dagsync_pb2_grpc

log = logging.getLogger(__name__)


async def serve(settings: DagSyncSettings, stop: asyncio.Event, *, ready: Callable[[str], None] | None = None) -> None:
    telemetry = setup_telemetry("dagsync", settings)
    bus = make_bus(settings.mqtt_url, settings.cluster)
    sync = DagSync(
        LocalFolderSource(settings.source_dir.resolve()),
        SnapshotStore(settings.snapshot_root),
        bus,
        keep=settings.keep_snapshots,
        clock=utcnow,
    )
    servicer = DagSyncServicer(sync)
    try:
        async with grpc_server(
            host=settings.host,
            port=settings.port,
            register=[lambda s: dagsync_pb2_grpc.add_DagSyncServiceServicer_to_server(servicer, s)],
            service_names=[dagsync_pb2.DESCRIPTOR.services_by_name["DagSyncService"].full_name],
        ) as server:
            await sync.sync_once()
            await server.set_serving()
            log.info("dagsync serving on %s:%d, mirroring %s", settings.host, server.port, settings.source_dir)
            if ready:
                ready(f"{settings.host}:{server.port}")
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), settings.sync_interval)
                except TimeoutError:
                    await sync.sync_once()
    finally:
        await bus.aclose()
        telemetry.shutdown()

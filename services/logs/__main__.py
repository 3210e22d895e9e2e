"""logs: settings -> lifespan -> serve."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from services.logs.engine import LogReader
from services.logs.server import LogsServicer
from spinner.config import LogsSettings
from spinner.grpcserver import grpc_server
from spinner.telemetry import setup_telemetry
from spinner.v1 import logs_pb2, logs_pb2_grpc

log = logging.getLogger(__name__)


async def serve(settings: LogsSettings, stop: asyncio.Event, *, ready: Callable[[str], None] | None = None) -> None:
    telemetry = setup_telemetry("logs", settings)
    servicer = LogsServicer(LogReader(settings.log_dir))
    try:
        async with grpc_server(
            host=settings.host,
            port=settings.port,
            register=[lambda s: logs_pb2_grpc.add_LogsServiceServicer_to_server(servicer, s)],
            service_names=[logs_pb2.DESCRIPTOR.services_by_name["LogsService"].full_name],
        ) as server:
            await server.set_serving()
            address = f"{settings.host}:{server.port}"
            log.info("logs serving on %s, reading %s", address, settings.log_dir)
            if ready:
                ready(address)
            await stop.wait()
    finally:
        telemetry.shutdown()

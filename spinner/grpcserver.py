"""One lifecycle for every service's gRPC server: health checking, reflection, tracing, clean stop."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

log = logging.getLogger(__name__)


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def set_serving(self, serving: bool = True) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        await self.health.set("", status)


@asynccontextmanager
async def grpc_server(
    *,
    host: str,
    port: int,
    register: Sequence[Callable[[grpc.aio.Server], None]],
    service_names: Sequence[str],
    interceptors: Sequence[Any] = (),
    grace: float = 5.0,
) -> AsyncIterator[RunningServer]:
    """Starts a grpc.aio server; health is NOT_SERVING until the caller sets it ready.

    service_names are the full names (e.g. "spinner.v1.SchedulerService") for reflection.
    """
    server = grpc.aio.server(interceptors=list(interceptors))
    for add in register:
        add(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
        server,
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind gRPC port {host}:{port}")
    await health_servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    await server.start()
    running = RunningServer(server=server, port=bound, health=health_servicer)
    try:
        yield running
    finally:
        await health_servicer.enter_graceful_shutdown()
        await server.stop(grace)


def channel(address: str, interceptors: Sequence[Any] = ()) -> grpc.aio.Channel:
    """A client channel; tracing interceptors come from spinner.telemetry.client_interceptors()."""
    return grpc.aio.insecure_channel(address, interceptors=list(interceptors))

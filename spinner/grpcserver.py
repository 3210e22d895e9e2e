"""One lifecycle for every service's gRPC server: health checking, reflection, tracing, clean stop.

Every server answers a transient database error (spinner/db/errors.py) with UNAVAILABLE, which
clients retry, and a request that is no message of the method's type with INVALID_ARGUMENT,
instead of the UNKNOWN an unhandled exception becomes.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from spinner.channels import CHANNEL_OPTIONS
from spinner.db.errors import brief, is_transient
from spinner.identity import Identity, Verifier
from spinner.rpcauth import Policy, RefusalAudit, ServiceAuth

log = logging.getLogger(__name__)


async def _unavailable(context: grpc.aio.ServicerContext, method: str, error: Exception) -> None:
    log.warning("%s: the database is unavailable: %s", method, brief(error))
    await context.abort(grpc.StatusCode.UNAVAILABLE, f"the database is unavailable, try again: {brief(error)}")


@dataclass(frozen=True)
class _Malformed:
    """What a request that does not parse becomes, for the handler's wrapper to refuse."""

    error: str


def _lenient(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as e:  # DecodeError and what a corrupt message raises on the way
            return _Malformed(str(e)[:200] or type(e).__name__)

    return parse


async def _refuse_malformed(context: grpc.aio.ServicerContext, method: str, request: _Malformed) -> None:
    log.info("%s: a malformed request: %s", method, request.error)
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"the request is not a valid message: {request.error}")


class TransientErrors(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Turns a transient database error escaping a handler into UNAVAILABLE, and a request that
    does not parse into INVALID_ARGUMENT (gRPC itself answers those UNKNOWN)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or handler.request_streaming:
            return handler
        method = details.method
        kinds = {
            "request_deserializer": _lenient(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if isinstance(request, _Malformed):
                    await _refuse_malformed(context, method, request)
                try:
                    return await unary(request, context)
                except Exception as e:
                    if not is_transient(e):
                        raise
                    await _unavailable(context, method, e)

            return grpc.unary_unary_rpc_method_handler(unary_unary, **kinds)
        if handler.unary_stream is not None:
            stream = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                if isinstance(request, _Malformed):
                    await _refuse_malformed(context, method, request)
                try:
                    result = stream(request, context)
                    if inspect.isasyncgen(result):
                        async for item in result:
                            yield item
                    else:  # a handler that writes with context.write
                        await result
                except Exception as e:
                    if not is_transient(e):
                        raise
                    await _unavailable(context, method, e)

            return grpc.unary_stream_rpc_method_handler(unary_stream, **kinds)
        return handler


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
    auth: ServiceAuth | None = None,
    reflect: bool = False,
) -> AsyncIterator[RunningServer]:
    """Starts a grpc.aio server; health is NOT_SERVING until the caller sets it ready.

    `auth` checks every call's caller first (spinner/rpcauth.py); only the gateway's public API,
    which checks its users' own tokens, has none. service_names are the full names (e.g.
    "spinner.v1.SchedulerService") for reflection, which is answered only when `reflect`.
    """
    server = grpc.aio.server(interceptors=[*([auth] if auth else []), TransientErrors(), *interceptors])
    for add in register:
        add(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if reflect:
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


def channel(address: str, interceptors: Sequence[Any] = (), *, identity: Identity | None = None) -> grpc.aio.Channel:
    """A client channel, whose calls carry `identity`'s service token (spinner/identity.py);
    tracing interceptors come from spinner.telemetry.client_interceptors()."""
    chain = [*(identity.interceptors() if identity else []), *interceptors]
    return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS, interceptors=chain)


def service_auth(
    name: str, identities: Path, policy: Policy, sessions: async_sessionmaker[AsyncSession] | None
) -> ServiceAuth:
    """The caller check of service `name`'s server: tokens for it, signed by a key in `identities`."""
    return ServiceAuth(Verifier(identities, name), policy, audit=RefusalAudit(sessions, name))

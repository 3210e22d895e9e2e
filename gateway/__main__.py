"""gateway: settings -> lifespan -> serve (HTTP with uvicorn and gRPC, in one event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn

from gateway.app import create_app
from gateway.auth import Authenticator
from gateway.engine import Gateway
from gateway.server import SpinnerApiServicer
from spinner.clock import utcnow
from spinner.config import GatewaySettings
from spinner.db.engine import create_engine, create_read_engine, session_factory
from spinner.fernet import load_box
from spinner.grpcserver import channel, grpc_server
from spinner.identity import load_identity
from spinner.telemetry import Telemetry, setup_telemetry
from spinner.v1 import gateway_pb2, gateway_pb2_grpc

log = logging.getLogger(__name__)


def secret_key(settings: GatewaySettings) -> str:
    """The configured key, else one kept in the home folder (made once, readable by this user only)."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.home) / "gateway_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the service's stop event decides.

    uvicorn >= 0.29 swaps SIGINT/SIGTERM handlers for its own while `serve()` runs
    (`capture_signals`); left alone, a SIGTERM would stop the web server before the
    service has begun its own orderly stop.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    settings: GatewaySettings,
    stop: asyncio.Event,
    *,
    ready: Callable[[str], None] | None = None,
    telemetry: Telemetry | None = None,
) -> None:
    box = load_box(settings.fernet_key, settings.home, "gateway")  # none: refuse to start (FernetKeyError)
    own_telemetry = telemetry is None
    telemetry = telemetry or setup_telemetry("gateway", settings)
    engine = create_engine(settings.database_url)
    read_engine = create_read_engine(settings.database_url)
    identity = load_identity(settings.identities, "gateway")  # none and none can be made: do not start
    logs_channel = channel(settings.logs_address, identity=identity)
    dagsync_channel = channel(settings.dagsync_address, identity=identity)
    gateway = Gateway(
        sessions=session_factory(engine),
        logs_channel=logs_channel,
        clock=utcnow,
        tracer=telemetry.tracer("spinner.gateway"),
        scheduler_channel=functools.partial(channel, identity=identity),
        readers=session_factory(read_engine),
        dagsync_channel=dagsync_channel,
    )
    auth = Authenticator(
        sessions=session_factory(engine),
        secret_key=secret_key(settings),
        clock=utcnow,
        session_max_age=settings.session_max_age,
        trusted_header=settings.trusted_header,
        trusted_proxies=tuple(settings.trusted_proxies),
        cache_seconds=settings.auth_cache_seconds,
    )
    app = create_app(gateway, auth, clock=utcnow, cookie_secure=settings.cookie_secure, secret_box=box)
    http = _Server(
        uvicorn.Config(
            app, host=settings.host, port=settings.http_port, log_level="warning", lifespan="off", access_log=False
        )
    )
    try:
        changes = await gateway.start()
        log.info("access control synced from the DAGs' declarations (%d change(s))", changes)
        async with grpc_server(
            host=settings.host,
            port=settings.grpc_port,
            register=[
                lambda s: gateway_pb2_grpc.add_SpinnerApiServicer_to_server(
                    SpinnerApiServicer(gateway, auth, watch_interval=settings.poll_interval, varconn=app.state.varconn),
                    s,
                )
            ],
            service_names=[gateway_pb2.DESCRIPTOR.services_by_name["SpinnerApi"].full_name],
            reflect=settings.grpc_reflection,  # its users' own tokens are checked by the API (no service auth)
        ) as grpc_srv:
            http_task = asyncio.create_task(http.serve(), name="gateway-http")
            try:
                while not http.started:
                    if http_task.done():
                        await http_task  # surfaces the bind error
                        raise OSError(f"the web server stopped at start (is port {settings.http_port} free?)")
                    await asyncio.sleep(0.05)
                port = http.servers[0].sockets[0].getsockname()[1]
                url = f"http://{settings.host}:{port}"
                await grpc_srv.set_serving()
                log.info("Spinner UI: %s (gRPC API on %s:%d)", url, settings.host, grpc_srv.port)
                if ready:
                    ready(url)
                await stop.wait()
            finally:
                gateway.close_log_streams()  # open log streams would hold uvicorn's graceful stop forever
                http.should_exit = True
                await http_task
    finally:
        await gateway.aclose()
        await logs_channel.close()
        await dagsync_channel.close()
        await engine.dispose()
        await read_engine.dispose()
        if own_telemetry:
            telemetry.shutdown()

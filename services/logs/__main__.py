"""logs: settings -> lifespan -> serve."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from services.logs.engine import LogReader, TryStates
from services.logs.server import LogsServicer
from services.logs.sources.base import LogSource
from services.logs.sources.elasticsearch import ElasticsearchSource
from services.logs.sources.local import LocalSource
from services.logs.sources.pod import PodSource
from services.logs.sources.s3 import S3Source
from spinner import rpcpolicy
from spinner.bundles import S3Location
from spinner.config import LogsSettings
from spinner.db.engine import create_read_engine, session_factory
from spinner.grpcserver import grpc_server, service_auth
from spinner.telemetry import setup_telemetry
from spinner.v1 import logs_pb2, logs_pb2_grpc

log = logging.getLogger(__name__)


def sources(settings: LogsSettings) -> list[LogSource]:
    """The stores to read, in order of preference (services/logs/engine.py)."""
    if settings.source == "local":
        return [LocalSource(settings.log_dir)]
    found: list[LogSource] = []
    if settings.logs_bucket:
        location = S3Location(
            bucket=settings.logs_bucket,
            prefix=settings.logs_prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
        )
        found.append(S3Source(location))
    found.append(PodSource(settings.k8s_kubeconfig, settings.k8s_namespace))
    if settings.es_hosts:
        found.append(ElasticsearchSource(settings.es_hosts, settings.es_index_pattern))
    return found


async def serve(settings: LogsSettings, stop: asyncio.Event, *, ready: Callable[[str], None] | None = None) -> None:
    telemetry = setup_telemetry("logs", settings)
    chosen = sources(settings)
    for source in chosen:
        if isinstance(source, ElasticsearchSource):
            try:
                await source.prepare()
            except Exception as e:  # Elasticsearch down at start: reading still works once it is back
                log.warning("could not install the log index template in Elasticsearch: %s", e)
    engine = create_read_engine(settings.database_url)  # only reads: has a followed try ended?
    reader = LogReader(
        chosen,
        follow_interval=settings.follow_interval,
        tries=TryStates(session_factory(engine)),
        ended_quiet=settings.follow_ended_quiet,
        state_interval=settings.follow_state_interval,
    )
    servicer = LogsServicer(reader)
    try:
        async with grpc_server(
            host=settings.host,
            port=settings.port,
            register=[lambda s: logs_pb2_grpc.add_LogsServiceServicer_to_server(servicer, s)],
            service_names=[logs_pb2.DESCRIPTOR.services_by_name["LogsService"].full_name],
            auth=service_auth("logs", settings.identities, rpcpolicy.LOGS, session_factory(engine)),
            reflect=settings.grpc_reflection,
        ) as server:
            await server.set_serving()
            address = f"{settings.host}:{server.port}"
            log.info("logs serving on %s, reading %s", address, ", ".join(s.name for s in chosen))
            if ready:
                ready(address)
            await stop.wait()
    finally:
        await reader.aclose()
        await engine.dispose()
        telemetry.shutdown()

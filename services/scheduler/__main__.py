"""scheduler: settings -> lifespan -> serve, for one partition."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable

from services.scheduler.engine.callbacks import CallbackDispatcher, DeadlineDefaults, DeadlineWatch
from services.scheduler.engine.leases import Lease, holder_name
from services.scheduler.engine.loop import PartitionScheduler
from services.scheduler.engine.metrics import SchedulerMetrics
from services.scheduler.engine.processing import DagProcessor, partition_tier
from services.scheduler.engine.scheduling import SchedulingEngine
from services.scheduler.executor_client import GrpcSubmitter
from services.scheduler.server import SchedulerServicer
from spinner import events, rpcpolicy
from spinner.clock import utcnow
from spinner.config import SchedulerSettings
from spinner.db.engine import create_engine, session_factory
from spinner.events import make_bus, wake_on_events
from spinner.grpcserver import channel, grpc_server, service_auth
from spinner.identity import load_identity
from spinner.sandbox import resolve_dag_user
from spinner.telemetry import Telemetry, setup_telemetry
from spinner.v1 import scheduler_pb2, scheduler_pb2_grpc

log = logging.getLogger(__name__)


async def serve(
    settings: SchedulerSettings,
    stop: asyncio.Event,
    *,
    ready: Callable[[str], None] | None = None,
    telemetry: Telemetry | None = None,
) -> None:
    partition_tier(settings.partition)  # a bad partition name fails at start, clearly
    dag_user = resolve_dag_user(settings.dag_user)  # SandboxError: a dag_user that cannot work, said at start
    if dag_user is not None:
        log.info("DAG files are parsed as %s (uid %d)", dag_user.name, dag_user.uid)
    own_telemetry = telemetry is None
    telemetry = telemetry or setup_telemetry(f"scheduler-{settings.partition}", settings)
    tracer = telemetry.tracer("spinner.scheduler")
    engine = create_engine(settings.database_url, idle_transaction_timeout=settings.transaction_idle_timeout)
    sessions = session_factory(engine)
    bus = make_bus(settings.mqtt_url, settings.cluster)
    identity = load_identity(settings.identities, "scheduler")  # none and none can be made: do not start
    executor_channel = channel(settings.executor_address, identity=identity)
    submitter = GrpcSubmitter(executor_channel)
    tier = partition_tier(settings.partition)
    scheduling = SchedulingEngine(
        settings.partition,
        clock=utcnow,
        heartbeat_timeout=settings.heartbeat_timeout,
        max_running_tasks=settings.running_task_limit(tier),
        full_pass_interval=settings.full_pass_interval,
        max_map_length=settings.max_map_length,
        metrics=SchedulerMetrics(telemetry.meter("spinner.scheduler"), settings.partition, tier),
    )
    scheduling.deadlines = DeadlineWatch(
        settings.partition,
        DeadlineDefaults(
            {t: settings.default_deadline(t) for t in (1, 2, 3)},
            settings.deadline_reference,
            tuple(settings.deadline_email),
        ),
    )
    holder = holder_name(socket.gethostname(), os.getpid(), uuid.uuid4().hex[:8])
    scheduler = PartitionScheduler(
        partition=settings.partition,
        sessions=sessions,
        # The address is known once the server has bound its port (port 0 picks a free one).
        lease=Lease(settings.partition, holder, "", ttl=settings.lease_seconds, clock=utcnow),
        processor=DagProcessor(
            settings.partition,
            parse_timeout=settings.parse_timeout,
            parse_memory_mb=settings.parse_memory_mb,
            retry_first=settings.parse_retry_interval,
            clock=utcnow,
            dag_user=dag_user,
            pod_policy=settings.pod_policy(),
        ),
        engine=scheduling,
        submitter=submitter,
        callbacks=CallbackDispatcher(settings.partition, submitter),
        bus=bus,
        snapshot_root=settings.snapshot_root,
        poll_interval=settings.poll_interval,
        tracer=tracer,
        clock=utcnow,
    )
    servicer = SchedulerServicer(scheduler, tracer)

    try:
        async with grpc_server(
            host=settings.host,
            port=settings.port,
            register=[lambda s: scheduler_pb2_grpc.add_SchedulerServiceServicer_to_server(servicer, s)],
            service_names=[scheduler_pb2.DESCRIPTOR.services_by_name["SchedulerService"].full_name],
            auth=service_auth("scheduler", settings.identities, rpcpolicy.SCHEDULER, sessions),
            reflect=settings.grpc_reflection,
        ) as server:
            address = f"{settings.host}:{server.port}"
            scheduler.lease.address = address
            async with asyncio.TaskGroup() as tg:
                listener = tg.create_task(
                    wake_on_events(bus, [events.RUN_TRIGGERED, events.TASK_ENDED], scheduler.waker)
                )
                snapshots = tg.create_task(wake_on_events(bus, [events.SNAPSHOT], scheduler.parse_waker))
                loop_task = tg.create_task(scheduler.run(stop))
                await server.set_serving()
                log.info("scheduler for %s serving on %s", settings.partition, address)
                if ready:
                    ready(address)
                await stop.wait()
                scheduler.waker.wake()
                await loop_task
                listener.cancel()
                snapshots.cancel()
    finally:
        await executor_channel.close()
        await bus.aclose()
        await engine.dispose()
        if own_telemetry:
            telemetry.shutdown()

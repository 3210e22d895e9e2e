"""executor: settings -> lifespan -> serve."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Callable

from services.executor.backends.base import ExecutorBackend
from services.executor.backends.instant import InstantBackend
from services.executor.backends.kubernetes import KubernetesBackend, KubernetesSettings
from services.executor.backends.local import LocalProcessBackend
from services.executor.engine import Executor
from services.executor.notifications import SmtpMailer, SmtpSettings, scrub_secrets
from services.executor.pod_spec import PodSettings
from services.executor.server import ExecutorServicer, RunnerServicer
from services.executor.tokens import TokenSigner, token_secret
from services.executor.varconn import RunnerSecrets
from spinner import rpcpolicy
from spinner.clock import utcnow
from spinner.config import ExecutorSettings
from spinner.db.engine import create_engine, session_factory
from spinner.events import make_bus
from spinner.fernet import load_box
from spinner.grpcserver import channel, grpc_server, service_auth
from spinner.identity import load_identity
from spinner.sandbox import resolve_task_user
from spinner.telemetry import Telemetry, setup_telemetry
from spinner.v1 import executor_pb2, executor_pb2_grpc

log = logging.getLogger(__name__)


def kubernetes_settings(settings: ExecutorSettings) -> KubernetesSettings:
    return KubernetesSettings(
        pod=PodSettings(
            namespace=settings.k8s_namespace,
            image_pull_policy=settings.k8s_image_pull_policy,
            service_account=settings.k8s_service_account,
            executor_name=settings.name,
            default_request_memory=settings.k8s_default_request_memory,
            default_request_cpu=settings.k8s_default_request_cpu,
            policy=settings.pod_policy(),
        ),
        kubeconfig=settings.k8s_kubeconfig,
        pending_timeout=settings.k8s_pending_timeout,
        keep_failed_pods=settings.k8s_keep_failed_pods,
    )


def smtp_settings(settings: ExecutorSettings) -> SmtpSettings:
    return SmtpSettings(
        host=settings.smtp_host, port=settings.smtp_port, user=settings.smtp_user, password=settings.smtp_password,
        starttls=settings.smtp_starttls, ssl=settings.smtp_ssl, sender=settings.smtp_from,
        timeout=settings.smtp_timeout,
    )  # fmt: skip


async def serve(
    settings: ExecutorSettings,
    stop: asyncio.Event,
    *,
    ready: Callable[[str], None] | None = None,
    telemetry: Telemetry | None = None,
) -> None:
    box = load_box(settings.fernet_key, settings.home, "executor")  # none: refuse to start (FernetKeyError)
    own_telemetry = telemetry is None
    telemetry = telemetry or setup_telemetry("executor", settings)
    engine = create_engine(settings.database_url)
    bus = make_bus(settings.mqtt_url, settings.cluster)
    identity = load_identity(settings.identities, "executor")  # none and none can be made: do not start
    signer = TokenSigner(token_secret(settings.token_secret, settings.home))  # restart-proof (tokens.py)
    executor = Executor(
        sessions=session_factory(engine),
        signer=signer,
        bus=bus,
        snapshot_root=settings.snapshot_root,
        log_dir=settings.log_dir,
        name=settings.name,
        clock=utcnow,
        heartbeat_interval=settings.runner_heartbeat_interval,
        meter=telemetry.meter("spinner.executor"),
        runner_env=settings.runner_env(),
        xcom_max_bytes=settings.xcom_max_bytes,
        retry_timeout=settings.database_retry_timeout,
        scheduler_channel=functools.partial(channel, identity=identity),
    )
    executor.callbacks.timeout = settings.callback_timeout
    if settings.smtp_host:
        executor.callbacks.mailer = SmtpMailer(smtp_settings(settings))
    scrub_secrets(os.environ)  # before any runner starts: local runners inherit this environment
    backend: ExecutorBackend
    if settings.backend == "instant":
        backend = InstantBackend(executor.process_exited, executor.run_instantly)
    elif settings.backend == "kubernetes":
        backend = KubernetesBackend(executor.process_exited, kubernetes_settings(settings), log_path=executor.log_path)
        executor.runner_python = settings.k8s_python
    else:
        task_user = resolve_task_user(settings.dag_user)  # SandboxError: said before the service starts
        if task_user is not None:
            log.info("local tries run as %s (uid %d)", task_user.name, task_user.uid)
        backend = LocalProcessBackend(
            executor.process_exited,
            keep_on_stop=settings.local_tries_on_stop == "keep",
            user=task_user,
            archive_logs=bool(settings.logs_bucket),
        )
    executor.backend = backend
    services = executor_pb2.DESCRIPTOR.services_by_name
    try:
        async with grpc_server(
            host=settings.host,
            port=settings.port,
            register=[
                lambda s: executor_pb2_grpc.add_ExecutorServiceServicer_to_server(
                    ExecutorServicer(executor, telemetry.tracer("spinner.executor")), s
                ),
                lambda s: executor_pb2_grpc.add_RunnerServiceServicer_to_server(
                    RunnerServicer(executor, RunnerSecrets(session_factory(engine), signer, box)), s
                ),
            ],
            service_names=[services["ExecutorService"].full_name, services["RunnerService"].full_name],
            auth=service_auth("executor", settings.identities, rpcpolicy.EXECUTOR, session_factory(engine)),
            reflect=settings.grpc_reflection,
        ) as server:
            executor.runner_address = f"{settings.host}:{server.port}"
            await server.set_serving()
            log.info("executor (%s backend) serving on %s", backend.name, executor.runner_address)
            await executor.adopt()  # pods that outlived the last executor (before any new launch)
            if ready:
                ready(executor.runner_address)
            try:
                await stop.wait()
            finally:
                await backend.aclose()  # while the server still answers the runners' last reports
    finally:
        await executor.reports.aclose()  # between batches: no transaction is cut off
        await executor.triggers.aclose()
        await bus.aclose()
        await engine.dispose()
        if own_telemetry:
            telemetry.shutdown()

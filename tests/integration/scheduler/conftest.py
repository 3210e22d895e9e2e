"""A real scheduler and executor, in this process, over a real database and real runner processes."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.dagsync.engine import DagSync
from services.dagsync.in_use import versions_in_use
from services.dagsync.snapshots import SnapshotStore
from services.dagsync.sources import LocalFolderSource
from services.executor.__main__ import serve as serve_executor
from services.scheduler.__main__ import serve as serve_scheduler
from spinner.config import ExecutorSettings, SchedulerSettings
from spinner.db.models import DagRun, ImportError_, TaskInstance
from spinner.events import NullBus
from spinner.telemetry import Telemetry, setup_telemetry
from spinner.v1 import scheduler_pb2, scheduler_pb2_grpc
from tests.fakes.tcp_proxy import TcpProxy
from tests.service_calls import service_channel

LOGS_BUCKET = "spinner-logs"
PARTITION = "spinner_tier_1_0"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Stack:
    repo: Path
    home: Path
    sessions: async_sessionmaker[AsyncSession]
    scheduler_address: str
    sync: DagSync
    telemetry: Telemetry
    spans: InMemorySpanExporter
    db_url: str
    executor_address: str = ""
    scheduler_stop: asyncio.Event | None = None
    scheduler_task: asyncio.Task[None] | None = None
    metric_reader: InMemoryMetricReader | None = None
    executor_stop: asyncio.Event | None = None
    executor_task: asyncio.Task[None] | None = None
    executor_settings: ExecutorSettings | None = None
    db_proxy: TcpProxy | None = None  # with @pytest.mark.db_proxy: between the services and the database
    scheduler_settings: SchedulerSettings | None = None

    async def stop_executor(self) -> None:
        """Stops the in-process executor as a shutdown does (a Kubernetes backend leaves its pods running)."""
        assert self.executor_stop is not None and self.executor_task is not None
        self.executor_stop.set()
        await self.executor_task

    async def start_executor(self) -> None:
        """A new executor with the same settings (same port, name and token secret): it adopts what runs."""
        assert self.executor_settings is not None
        ready: list[str] = []
        self.executor_stop = asyncio.Event()
        self.executor_task = asyncio.create_task(
            serve_executor(self.executor_settings, self.executor_stop, ready=ready.append, telemetry=self.telemetry)
        )
        await self.wait_for(lambda: bool(ready), 20, "executor ready again")

    def metric_points(self, name: str) -> list[Any]:
        """Data points of one instrument, as exported now."""
        assert self.metric_reader is not None
        data = self.metric_reader.get_metrics_data()
        points: list[Any] = []
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        points.extend(metric.data.data_points)
        return points

    async def stop_scheduler(self) -> None:
        """Stops the in-process scheduler (it gives its lease up)."""
        assert self.scheduler_stop is not None and self.scheduler_task is not None
        self.scheduler_stop.set()
        await self.scheduler_task

    async def start_scheduler(self) -> None:
        """A new scheduler with the same settings (same partition and executor): it takes the lease again."""
        assert self.scheduler_settings is not None
        ready: list[str] = []
        self.scheduler_stop = asyncio.Event()
        self.scheduler_task = asyncio.create_task(
            serve_scheduler(self.scheduler_settings, self.scheduler_stop, ready=ready.append, telemetry=self.telemetry)
        )
        await self.wait_for(lambda: bool(ready), 20, "scheduler ready again")
        self.scheduler_address = ready[0]

    async def trigger_via_lease(self, dag_id: str, run_id: str) -> str:
        """Triggers through whichever scheduler holds the partition now, as the gateway routes."""
        from spinner.db.models import PartitionLease

        async def address() -> str | None:
            async with self.sessions() as s:
                lease = await s.get(PartitionLease, PARTITION, populate_existing=True)
                return lease.address if lease and lease.expires_at > utcnow() else None

        await self.wait_for(address, 60, "a scheduler holds the partition")  # a process start, maybe on a busy machine
        self.scheduler_address = await address() or ""
        return await self.trigger(dag_id, run_id=run_id)

    def write_dag(self, rel: str, source: str) -> None:
        path = self.repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))

    async def publish(self) -> None:
        await self.sync.sync_once()

    async def trigger(self, dag_id: str, conf: str = "", run_id: str = "") -> str:
        async with service_channel(self.scheduler_address, self.home / "identity") as ch:
            stub = scheduler_pb2_grpc.SchedulerServiceStub(ch)
            reply = await stub.TriggerDagRun(
                scheduler_pb2.TriggerDagRunRequest(dag_id=dag_id, conf_json=conf, run_id=run_id), timeout=10
            )
        return str(reply.run.run_id)

    async def wait_dag(self, dag_id: str, timeout: float = 30) -> None:
        from spinner.db.models import DagModel

        async def present() -> bool:
            async with self.sessions() as s:
                return (await s.get(DagModel, dag_id)) is not None

        await self.wait_for(present, timeout, f"DAG {dag_id} parsed")

    async def wait_run(self, dag_id: str, run_id: str, timeout: float = 60) -> DagRun:
        async def ended() -> bool:
            run = await self.run(dag_id, run_id)
            return run is not None and run.state in ("success", "failed")

        await self.wait_for(ended, timeout, f"run {run_id} of {dag_id} ended")
        run = await self.run(dag_id, run_id)
        assert run is not None
        return run

    async def run(self, dag_id: str, run_id: str) -> DagRun | None:
        async with self.sessions() as s:
            q = select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
            return (await s.execute(q)).scalar_one_or_none()

    async def states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        async with self.sessions() as s:
            q = select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            return {ti.task_id: ti.state for ti in (await s.execute(q)).scalars()}

    async def tis(self, dag_id: str, run_id: str) -> dict[str, TaskInstance]:
        async with self.sessions() as s:
            q = select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            return {ti.task_id: ti for ti in (await s.execute(q)).scalars()}

    async def import_errors(self) -> dict[str, str]:
        async with self.sessions() as s:
            return {e.filename: e.stacktrace for e in (await s.execute(select(ImportError_))).scalars()}

    @staticmethod
    async def wait_for(check: Callable[[], object], timeout: float, what: str) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out after {timeout} s waiting for: {what}")


@pytest.fixture
async def stack(
    request: pytest.FixtureRequest,
    db_url: str,
    engine: object,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> AsyncIterator[Stack]:
    marker = request.node.get_closest_marker("scheduler_settings")
    extra = dict(marker.kwargs) if marker else {}
    exec_marker = request.node.get_closest_marker("executor_settings")
    exec_extra = dict(exec_marker.kwargs) if exec_marker else {}
    if exec_extra.get("backend") == "kubernetes":
        # Pods run on the Kubernetes test double (tests/fakes/kubernetes.py) as local processes.
        exec_extra.setdefault("k8s_kubeconfig", str(request.getfixturevalue("kubeconfig")))
        exec_extra.setdefault("k8s_python", sys.executable)
    if exec_extra.pop("log_stores", False):
        # Runners ship to the Elasticsearch test double and archive to moto's S3 (tests/fakes).
        moto = request.getfixturevalue("moto")
        es = request.getfixturevalue("fake_elasticsearch")
        import boto3

        boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1").create_bucket(Bucket=LOGS_BUCKET)
        exec_extra.update(logs_bucket=LOGS_BUCKET, s3_endpoint_url=moto.endpoint, es_hosts=[es.url])
        if exec_extra.get("backend") == "kubernetes":  # the pods' "image" has the credentials
            fake = request.getfixturevalue("fake_kubernetes")
            fake.base_env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    repo = tmp_path / "repo"
    (repo / PARTITION).mkdir(parents=True)
    shutil.copytree(Path(__file__).parents[3] / "examples" / "dags" / "plugins", repo / "plugins")
    home = tmp_path / "home"
    sync = DagSync(
        LocalFolderSource(repo), SnapshotStore(home / "snapshots"), NullBus(), keep=3, clock=utcnow,
        in_use=versions_in_use(sessions),
    )  # fmt: skip
    await sync.sync_once()
    stop = asyncio.Event()
    addresses: dict[str, str] = {}
    proxy: TcpProxy | None = None
    service_db_url = db_url
    if request.node.get_closest_marker("db_proxy"):
        # The services reach the database through a proxy the test can take down (tests/fakes/tcp_proxy.py).
        url = make_url(db_url)
        proxy = TcpProxy(url.host or "127.0.0.1", url.port or 3306)
        await proxy.up()
        service_db_url = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    common = {"home": home, "database_url": service_db_url, "poll_interval": 0.2}
    spans = InMemorySpanExporter()
    metric_reader = InMemoryMetricReader()
    telemetry = setup_telemetry(
        "test",
        ExecutorSettings(home=home),
        span_processors=[SimpleSpanProcessor(spans)],
        metric_readers=[metric_reader],
    )
    # Tasks, not a TaskGroup: pytest may set a fixture up and tear it down in different tasks.
    exec_extra.setdefault("port", 0)
    exec_extra.setdefault("local_tries_on_stop", "stop")  # a test's tasks end with it (Spinner's default keeps them)
    if exec_extra["port"] == "free":  # a fixed port, so a restarted executor answers the same runners
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            exec_extra["port"] = sock.getsockname()[1]
    executor_settings = ExecutorSettings(runner_heartbeat_interval=1, **common, **exec_extra)  # type: ignore[arg-type]
    executor_stop = asyncio.Event()
    executor_task = asyncio.create_task(
        serve_executor(
            executor_settings, executor_stop, ready=lambda a: addresses.__setitem__("executor", a), telemetry=telemetry
        )
    )
    stack_obj: Stack | None = None
    try:
        await Stack.wait_for(lambda: "executor" in addresses, 20, "executor ready")
        settings = SchedulerSettings(
            partition=PARTITION,
            port=0,
            executor_address=addresses["executor"],
            **common,  # type: ignore[arg-type]
            **extra,
        )
        scheduler_stop = asyncio.Event()
        scheduler_task = asyncio.create_task(
            serve_scheduler(
                settings, scheduler_stop, ready=lambda a: addresses.__setitem__("scheduler", a), telemetry=telemetry
            )
        )
        await Stack.wait_for(lambda: "scheduler" in addresses, 20, "scheduler ready")
        stack_obj = Stack(
            repo, home, sessions, addresses["scheduler"], sync, telemetry, spans, db_url, addresses["executor"],
            scheduler_stop, scheduler_task, metric_reader, executor_stop, executor_task, executor_settings, proxy,
            settings,
        )  # fmt: skip
        yield stack_obj
    finally:
        stop.set()
        if "scheduler_stop" in locals():
            scheduler_stop.set()
        if stack_obj is not None and stack_obj.executor_stop is not None:
            stack_obj.executor_stop.set()
        if stack_obj is not None and stack_obj.scheduler_stop is not None:
            stack_obj.scheduler_stop.set()
        executor_stop.set()
        tasks = [executor_task] + ([stack_obj.executor_task] if stack_obj and stack_obj.executor_task else [])
        tasks += [scheduler_task] if "scheduler_task" in locals() else []
        tasks += [stack_obj.scheduler_task] if stack_obj and stack_obj.scheduler_task else []
        if proxy is not None:
            await proxy.up()  # a test that failed with the database away still stops cleanly
        results = await asyncio.wait_for(asyncio.gather(*set(tasks), return_exceptions=True), 30)
        if proxy is not None:
            await proxy.aclose()
        for result in results:
            if isinstance(result, BaseException):
                raise result

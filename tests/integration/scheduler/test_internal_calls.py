"""Internal calls are authenticated and authorised (issue 14): the call matrix against real processes.

`spinner executor`, `spinner scheduler`, `spinner logs` and `spinner dagsync` run as processes over
one home, whose identity folder holds each service's key. The test calls them as nobody (no
credential), as an attacker with keys of their own, as the wrong service, and as the right one;
and as a task runner holding another try's token. Every refusal is UNAUTHENTICATED or
PERMISSION_DENIED and lands in the audit log; health checking stays open to anyone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import select

from spinner.db.models import AuditLog
from spinner.identity import ensure_identities
from spinner.v1 import (
    common_pb2,
    dagsync_pb2,
    dagsync_pb2_grpc,
    executor_pb2,
    executor_pb2_grpc,
    logs_pb2,
    logs_pb2_grpc,
    scheduler_pb2,
    scheduler_pb2_grpc,
)
from tests.fakes.tcp_proxy import free_port
from tests.service_calls import service_channel

from .conftest import PARTITION, Stack
from .service_processes import ServiceProcesses, serving

REFUSED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


@dataclass
class Services:
    executor: str
    scheduler: str
    logs: str
    dagsync: str


@pytest.fixture
def procs(stack: Stack, tmp_path: Path) -> Iterator[ServiceProcesses]:
    group = ServiceProcesses(
        stack.home, stack.db_url, tmp_path, SPINNER_POLL_INTERVAL="0.2", SPINNER_RUNNER_HEARTBEAT_INTERVAL="1",
        SPINNER_FERNET_KEY=os.environ["SPINNER_FERNET_KEY"],
    )  # fmt: skip
    yield group
    group.stop_all()


async def _start(stack: Stack, procs: ServiceProcesses) -> Services:
    await stack.stop_scheduler()
    await stack.stop_executor()
    ports = {name: free_port() for name in ("executor", "scheduler", "logs", "dagsync")}
    services = Services(**{name: f"127.0.0.1:{port}" for name, port in ports.items()})
    procs.start("executor", "executor", "--port", str(ports["executor"]))
    procs.start("scheduler", "scheduler", "--partition", PARTITION, "--port", str(ports["scheduler"]),
                SPINNER_EXECUTOR_ADDRESS=services.executor)  # fmt: skip
    procs.start("logs", "logs", "--port", str(ports["logs"]))
    procs.start("dagsync", "dagsync", "--port", str(ports["dagsync"]), "--dags", str(stack.repo))
    for name in ("executor", "scheduler", "logs", "dagsync"):
        address = getattr(services, name)
        await stack.wait_for(lambda a=address: serving(a), 120, f"{name} serving")  # type: ignore[misc]
    return services


def _try_key(task_id: str, run_id: str) -> common_pb2.TaskTryKey:
    return common_pb2.TaskTryKey(dag_id="tokens", run_id=run_id, task_id=task_id, try_number=1)


def _calls(services: Services) -> list[tuple[str, str, Any, str, str]]:
    """(address, method, call, a caller allowed to make it, a service that may not)."""
    key = _try_key("a", "nope")
    return [
        (services.scheduler, "SchedulerService.TriggerDagRun",
         lambda ch: scheduler_pb2_grpc.SchedulerServiceStub(ch).TriggerDagRun(
             scheduler_pb2.TriggerDagRunRequest(dag_id="nope", triggered_by="user:admin"), timeout=10), "gateway", "logs"),
        (services.scheduler, "SchedulerService.SetPaused",
         lambda ch: scheduler_pb2_grpc.SchedulerServiceStub(ch).SetPaused(
             scheduler_pb2.SetPausedRequest(dag_id="nope", paused=True), timeout=10), "gateway", "executor"),
        (services.executor, "ExecutorService.Submit",
         lambda ch: executor_pb2_grpc.ExecutorServiceStub(ch).Submit(
             executor_pb2.SubmitRequest(key=key, partition=PARTITION), timeout=10), "scheduler", "gateway"),
        (services.logs, "LogsService.Read",
         lambda ch: logs_pb2_grpc.LogsServiceStub(ch).Read(logs_pb2.ReadLogRequest(key=key), timeout=10), "gateway", "executor"),
        (services.logs, "LogsService.Follow", _follow_once, "gateway", "executor"),  # a stream: its own interceptor
        (services.dagsync, "DagSyncService.SyncNow",
         lambda ch: dagsync_pb2_grpc.DagSyncServiceStub(ch).SyncNow(dagsync_pb2.SyncNowRequest(), timeout=10),
         "gateway", "scheduler"),
    ]  # fmt: skip


async def _follow_once(ch: grpc.aio.Channel) -> None:
    call = logs_pb2_grpc.LogsServiceStub(ch).Follow(logs_pb2.FollowLogRequest(key=_try_key("a", "nope")), timeout=10)
    await call.read()


async def _code(channel: grpc.aio.Channel, call: Any) -> grpc.StatusCode:
    async with channel:
        try:
            await call(channel)
        except grpc.aio.AioRpcError as e:
            return e.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("db_url", ["mariadb"], indirect=True)
async def test_internal_services_refuse_callers_without_the_right_identity_and_audit_it(
    stack: Stack, procs: ServiceProcesses, tmp_path: Path
) -> None:
    services = await _start(stack, procs)
    identities = stack.home / "identity"
    attacker = tmp_path / "attacker-keys"
    ensure_identities(attacker)  # keys of the same names, not trusted by anyone
    seen: dict[str, dict[str, str]] = {}
    wrong_ones: list[str] = []
    for address, method, call, allowed, wrong in _calls(services):
        got = seen[method] = {
            "nobody": (await _code(grpc.aio.insecure_channel(address), call)).name,
            "forged": (await _code(service_channel(address, attacker, allowed), call)).name,
            wrong: (await _code(service_channel(address, identities, wrong), call)).name,
            allowed: (await _code(service_channel(address, identities, allowed), call)).name,
        }
        expected = {"nobody": "UNAUTHENTICATED", "forged": "UNAUTHENTICATED", wrong: "PERMISSION_DENIED"}
        if {k: got[k] for k in expected} != expected or got[allowed] in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
            wrong_ones.append(method)
        # Health checking stays open: probes and load balancers have no credential.
        async with grpc.aio.insecure_channel(address) as ch:
            reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert not wrong_ones, seen

    # The gateway alone may say for whom it acts.
    async with service_channel(services.scheduler, identities, "executor") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as acting:
            await scheduler_pb2_grpc.SchedulerServiceStub(ch).TriggerDagRun(
                scheduler_pb2.TriggerDagRunRequest(dag_id="nope"),
                metadata=[("spinner-on-behalf-of", "admin")],
                timeout=10,
            )
    assert acting.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "may not act on behalf of a user" in (acting.value.details() or "")

    async def audited() -> list[AuditLog]:
        async with stack.sessions() as s:
            rows = (await s.execute(select(AuditLog).where(AuditLog.outcome == "denied"))).scalars().all()
        return list(rows) if len(rows) >= 3 * len(_calls(services)) + 1 else []

    await stack.wait_for(audited, 20, "every refusal audited")
    rows = await audited()
    users = {r.username for r in rows}
    assert {"service:anonymous", "service:executor", "service:gateway", "service:logs"} <= users, users
    assert any(r.action == "rpc /spinner.v1.ExecutorService/Submit" for r in rows), [r.action for r in rows]
    assert {r.details.get("service") for r in rows} == {"scheduler", "executor", "logs", "dagsync"}


@pytest.mark.parametrize("db_url", ["mariadb"], indirect=True)
async def test_a_runner_may_use_only_its_own_tries_token(stack: Stack, procs: ServiceProcesses, tmp_path: Path) -> None:
    services = await _start(stack, procs)
    record = tmp_path / "tokens"
    record.mkdir()
    stack.write_dag(
        f"{PARTITION}/team/tokens.py",
        f"""
from spinner import DAG, BashOperator, Tier
with DAG(dag_id="tokens", tier=Tier.TIER1, max_active_tasks=4) as dag:
    for t in ("a", "b"):
        BashOperator(task_id=t, bash_command=f'echo "$SPINNER_RUNNER_TOKEN" > {record}/{{t}}; sleep 30')
""",
    )
    await stack.publish()
    await stack.wait_dag("tokens", timeout=90)
    run_id = await stack.trigger_via_lease("tokens", "tokens_1")

    def tokens() -> dict[str, str]:
        return {p.name: p.read_text().strip() for p in record.iterdir() if p.read_text().strip()}

    await stack.wait_for(lambda: len(tokens()) == 2, 60, "both tasks running with their tokens")
    a, b = tokens()["a"], tokens()["b"]
    async with grpc.aio.insecure_channel(services.executor) as ch:
        runner = executor_pb2_grpc.RunnerServiceStub(ch)
        own = await runner.Heartbeat(executor_pb2.RunnerHeartbeatRequest(key=_try_key("a", run_id), token=a))
        assert own.keep_running
        for key, token in ((_try_key("b", run_id), a), (_try_key("a", run_id), b), (_try_key("a", run_id), "")):
            with pytest.raises(grpc.aio.AioRpcError) as other:
                await runner.Heartbeat(executor_pb2.RunnerHeartbeatRequest(key=key, token=token), timeout=10)
            assert other.value.code() in REFUSED, other.value
        # Nor may a runner use the scheduler's side of the executor with its token.
        with pytest.raises(grpc.aio.AioRpcError) as submit:
            await executor_pb2_grpc.ExecutorServiceStub(ch).Submit(
                executor_pb2.SubmitRequest(key=_try_key("a", run_id)),
                metadata=[("authorization", f"Bearer {a}")],
                timeout=10,
            )
        assert submit.value.code() == grpc.StatusCode.UNAUTHENTICATED

"""Runs of other DAGs that a task try triggers (TriggerDagRunOperator), and their states.

The runner asks over RunnerService with its try's token; this asks the scheduler that owns the
triggered DAG (spinner/routing.py, as the gateway does), with `triggered_by` naming the try
(spinner/triggering.py) so the new run links back to it. Only a try that is running may trigger.
Every trigger, refused or done, is audited as an action on the triggered DAG, by the task.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.executor import queries
from services.executor.backends.base import TryKey
from spinner import routing
from spinner.db.models import AuditLog, DagRun
from spinner.grpcserver import channel
from spinner.routing import SchedulerRouter
from spinner.sdk.dag import ID_RE
from spinner.telemetry import inject_metadata
from spinner.triggering import TriggeringTask
from spinner.v1 import common_pb2, scheduler_pb2

log = logging.getLogger(__name__)


class TriggerFailed(Exception):
    """Base of what a trigger can run into; `code` is the gRPC status the runner gets."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class TriggerNotFound(TriggerFailed):
    code = grpc.StatusCode.NOT_FOUND


class TriggerExists(TriggerFailed):
    code = grpc.StatusCode.ALREADY_EXISTS


class TriggerInvalid(TriggerFailed):
    code = grpc.StatusCode.INVALID_ARGUMENT


class TriggerUnavailable(TriggerFailed):
    code = grpc.StatusCode.UNAVAILABLE


class TriggerNotRunning(TriggerFailed):
    code = grpc.StatusCode.FAILED_PRECONDITION


_FROM_SCHEDULER: dict[grpc.StatusCode, type[TriggerFailed]] = {
    grpc.StatusCode.NOT_FOUND: TriggerNotFound,
    grpc.StatusCode.ALREADY_EXISTS: TriggerExists,
    grpc.StatusCode.INVALID_ARGUMENT: TriggerInvalid,
    grpc.StatusCode.FAILED_PRECONDITION: TriggerInvalid,
}


@dataclass(frozen=True)
class TriggerRequest:
    dag_id: str
    conf_json: str
    logical_date: str
    run_id: str
    reset_dag_run: bool


@dataclass(frozen=True)
class TriggeredRun:
    run_id: str
    logical_date: str
    state: str
    created: bool


class DagRunTriggers:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], dt.datetime],
        new_channel: Callable[[str], grpc.aio.Channel] = channel,
        rpc_timeout: float = 10.0,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._router = SchedulerRouter(sessions, clock, new_channel)
        self._timeout = rpc_timeout

    async def aclose(self) -> None:
        await self._router.aclose()

    async def trigger(self, key: TryKey, request: TriggerRequest) -> TriggeredRun:
        source = TriggeringTask(key.dag_id, key.run_id, key.task_id)
        details: dict[str, Any] = {
            "triggering": {"dag_id": key.dag_id, "run_id": key.run_id, "task_id": key.task_id},
            "try_number": key.try_number,
        }
        if key.map_index >= 0:  # which instance of a mapped task triggered it (docs/adr/0007)
            details["triggering"]["map_index"] = key.map_index
        try:
            conf = _conf(request.conf_json)
            if conf:
                details["conf"] = conf
            if request.reset_dag_run:
                details["reset_dag_run"] = True
            await self._check_running(key)
            result = await self._trigger(source, request, conf)
        except TriggerFailed as e:
            await self._audit(source, request.dag_id, request.run_id or None, "error", {**details, "error": str(e)})
            raise
        await self._audit(source, request.dag_id, result.run_id, "ok", {**details, "created": result.created})
        return result

    async def get(self, dag_id: str, run_id: str) -> tuple[str, str]:
        """(state, logical_date) of a run; only those two, not its conf."""
        async with self._sessions() as s:
            run = await queries.get_run(s, dag_id, run_id)
        if run is None:
            raise TriggerNotFound(f"DAG '{dag_id}' has no run {run_id!r}")
        return run.state, run.logical_date.isoformat()

    async def _check_running(self, key: TryKey) -> None:
        async with self._sessions() as s:
            ti = await queries.get_ti(s, key)
        if ti is None or ti.try_number != key.try_number or ti.state != "running":
            raise TriggerNotRunning(f"try {key.try_number} of {key.dag_id}.{key.task_id} is not running")

    async def _trigger(self, source: TriggeringTask, request: TriggerRequest, conf: dict[str, Any]) -> TriggeredRun:
        if not ID_RE.match(request.dag_id):
            raise TriggerInvalid(f"trigger_dag_id {request.dag_id!r} is not a DAG id")
        try:
            partition, stub = await self._router.owner(request.dag_id)
        except routing.DagNotFound as e:
            raise TriggerNotFound(str(e)) from None
        except routing.NoScheduler as e:
            raise TriggerUnavailable(str(e)) from None
        pb = scheduler_pb2.TriggerDagRunRequest(
            dag_id=request.dag_id, conf_json=json.dumps(conf), run_id=request.run_id,
            logical_date=request.logical_date, triggered_by=source.encode(),
        )  # fmt: skip
        opts: dict[str, Any] = {"timeout": self._timeout, "metadata": inject_metadata()}
        try:
            reply = await stub.TriggerDagRun(pb, **opts)
            return TriggeredRun(reply.run.run_id, reply.logical_date, reply.state, True)
        except grpc.aio.AioRpcError as e:
            failure = _failure(e, partition)
            if not (isinstance(failure, TriggerExists) and request.reset_dag_run):
                raise failure from None
        # reset_dag_run: the existing run is cleared and runs again (Airflow's rule).
        existing = await self._existing(request)
        if existing is None:
            raise TriggerExists(
                f"DAG '{request.dag_id}' already has a run like {request.run_id!r}; it could not be read"
            )
        ref = common_pb2.DagRunRef(dag_id=existing.dag_id, run_id=existing.run_id)
        clear = scheduler_pb2.ClearTaskInstancesRequest(
            selection=scheduler_pb2.TaskSelection(run=ref), requested_by=source.label
        )
        try:
            await stub.ClearTaskInstances(clear, **opts)
        except grpc.aio.AioRpcError as e:
            raise _failure(e, partition) from None
        return TriggeredRun(existing.run_id, existing.logical_date.isoformat(), "queued", False)

    async def _existing(self, request: TriggerRequest) -> DagRun | None:
        conditions = []
        if request.run_id:
            conditions.append(DagRun.run_id == request.run_id)
        if request.logical_date:
            try:
                when = dt.datetime.fromisoformat(request.logical_date)
            except ValueError:
                when = None
            if when is not None:
                conditions.append(DagRun.logical_date == (when if when.tzinfo else when.replace(tzinfo=dt.UTC)))
        if not conditions:
            return None
        async with self._sessions() as s:
            q = select(DagRun).where(DagRun.dag_id == request.dag_id, or_(*conditions)).limit(1)
            return (await s.execute(q)).scalar_one_or_none()

    async def _audit(
        self, source: TriggeringTask, dag_id: str, run_id: str | None, outcome: str, details: dict[str, Any]
    ) -> None:
        """An action on the triggered DAG, by the task; written in its own transaction, whatever the outcome."""
        row = AuditLog(
            ts=self._clock(), username=source.label[:200], action="trigger", dag_id=dag_id[:250],
            run_id=run_id[:250] if run_id else None, task_id=None, remote_addr="", outcome=outcome, details=details,
        )  # fmt: skip
        async with self._sessions() as s, s.begin():
            s.add(row)


def _conf(conf_json: str) -> dict[str, Any]:
    try:
        conf = json.loads(conf_json) if conf_json.strip() else {}
    except ValueError as e:
        raise TriggerInvalid(f"conf is not valid JSON: {e}") from None
    if not isinstance(conf, dict):
        raise TriggerInvalid("conf must be a JSON object")
    return conf


def _failure(e: grpc.aio.AioRpcError, partition: str) -> TriggerFailed:
    cls = _FROM_SCHEDULER.get(e.code(), TriggerUnavailable)
    detail = e.details() or str(e.code())
    if cls is TriggerUnavailable:
        return TriggerUnavailable(f"the scheduler of {partition} is not reachable: {detail}")
    return cls(detail)

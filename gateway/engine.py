"""The gateway's domain: listings from the database, actions routed to the owning services."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import grpc
from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway import queries
from gateway.errors import InvalidRequest, NotFound, Unavailable, from_rpc_error
from spinner.db.models import DagModel, DagRun, TaskInstance
from spinner.sdk.dag import ID_RE
from spinner.telemetry import inject_metadata
from spinner.v1 import (
    common_pb2,
    dagsync_pb2,
    dagsync_pb2_grpc,
    logs_pb2,
    logs_pb2_grpc,
    scheduler_pb2,
    scheduler_pb2_grpc,
)

T = TypeVar("T")
MAX_LIMIT = 1000
TERMINAL_RUN_STATES = ("success", "failed")


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class DagInfo:
    dag_id: str
    partition: str
    tier: int
    schedule: str | None
    is_paused: bool
    owner: str
    tags: list[str]
    description: str
    bundle_version: str
    fileloc: str
    next_dagrun: str | None

    @classmethod
    def of(cls, m: DagModel) -> DagInfo:
        return cls(
            dag_id=m.dag_id, partition=m.partition, tier=m.tier, schedule=m.schedule, is_paused=m.is_paused,
            owner=m.owner, tags=list(m.tags or []), description=m.description, bundle_version=m.bundle_version,
            fileloc=m.fileloc, next_dagrun=iso(m.next_dagrun),
        )  # fmt: skip


@dataclass(frozen=True)
class SnapshotInfo:
    """This host's DAG snapshot as dagsync reports it (issue 5): which bundle, and how stale."""

    bundle_version: str
    stale_seconds: float
    last_error: str
    source: str


@dataclass(frozen=True)
class RunInfo:
    dag_id: str
    run_id: str
    state: str
    run_type: str
    logical_date: str | None
    data_interval_start: str | None
    data_interval_end: str | None
    start_date: str | None
    end_date: str | None
    conf: dict[str, Any]
    bundle_version: str
    triggered_by: str

    @classmethod
    def of(cls, r: DagRun) -> RunInfo:
        return cls(
            dag_id=r.dag_id, run_id=r.run_id, state=r.state, run_type=r.run_type, logical_date=iso(r.logical_date),
            data_interval_start=iso(r.data_interval_start), data_interval_end=iso(r.data_interval_end),
            start_date=iso(r.start_date), end_date=iso(r.end_date), conf=dict(r.conf or {}),
            bundle_version=r.bundle_version, triggered_by=r.triggered_by,
        )  # fmt: skip


@dataclass(frozen=True)
class TaskInstanceInfo:
    dag_id: str
    run_id: str
    task_id: str
    state: str | None
    try_number: int
    max_tries: int
    operator: str
    start_date: str | None
    end_date: str | None
    duration: float | None
    error: str

    @classmethod
    def of(cls, t: TaskInstance) -> TaskInstanceInfo:
        return cls(
            dag_id=t.dag_id, run_id=t.run_id, task_id=t.task_id, state=t.state, try_number=t.try_number,
            max_tries=t.max_tries, operator=t.operator, start_date=iso(t.start_date), end_date=iso(t.end_date),
            duration=t.duration, error=t.error,
        )  # fmt: skip


@dataclass(frozen=True)
class LogInfo:
    lines: list[str]
    next_offset: int
    source: str
    complete: bool
    try_number: int


@dataclass(frozen=True)
class Grid:
    """A DAG's recent runs by task, oldest run first: what the grid view draws."""

    dag: DagInfo
    task_ids: list[str]
    runs: list[RunInfo]
    cells: dict[str, dict[str, TaskInstanceInfo]] = field(default_factory=dict)  # run_id -> task_id -> TI


def to_json(value: Any) -> Any:
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return value


def check_limit(limit: int, offset: int = 0) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}")
    if offset < 0:
        raise InvalidRequest("offset must be 0 or more")


class Gateway:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        logs_channel: grpc.aio.Channel,
        clock: Callable[[], dt.datetime],
        tracer: trace.Tracer,
        rpc_timeout: float = 10.0,
        scheduler_channel: Callable[[str], grpc.aio.Channel] = grpc.aio.insecure_channel,
        dagsync_channel: grpc.aio.Channel | None = None,
    ) -> None:
        self._sessions = sessions
        self._dagsync = dagsync_pb2_grpc.DagSyncServiceStub(dagsync_channel) if dagsync_channel else None
        self._new_channel = scheduler_channel
        self._logs = logs_pb2_grpc.LogsServiceStub(logs_channel)
        self._clock = clock
        self._tracer = tracer
        self._timeout = rpc_timeout
        self._scheduler_channels: dict[str, grpc.aio.Channel] = {}

    async def aclose(self) -> None:
        for ch in self._scheduler_channels.values():
            await ch.close()
        self._scheduler_channels.clear()

    # --- reads -------------------------------------------------------------------------

    async def snapshot(self) -> SnapshotInfo | None:
        """The local dagsync's status; None when there is none or it does not answer (the page still renders)."""
        if self._dagsync is None:
            return None
        try:
            s = await self._dagsync.GetSnapshot(dagsync_pb2.GetSnapshotRequest(), timeout=1.0)
        except grpc.RpcError:
            return None
        return SnapshotInfo(s.bundle_version, s.stale_seconds, s.last_error, s.source)

    async def list_dags(self, limit: int = 100, offset: int = 0) -> tuple[list[DagInfo], int]:
        check_limit(limit, offset)
        async with self._sessions() as s:
            rows, total = await queries.list_dags(s, limit, offset)
        return [DagInfo.of(r) for r in rows], total

    async def get_dag(self, dag_id: str) -> DagInfo:
        async with self._sessions() as s:
            row = await queries.get_dag(s, dag_id)
        if row is None:
            raise NotFound(f"DAG '{dag_id}' not found")
        return DagInfo.of(row)

    async def list_runs(self, dag_id: str, limit: int = 25) -> list[RunInfo]:
        check_limit(limit)
        await self.get_dag(dag_id)
        async with self._sessions() as s:
            return [RunInfo.of(r) for r in await queries.list_runs(s, dag_id, limit)]

    async def get_run(self, dag_id: str, run_id: str) -> RunInfo:
        async with self._sessions() as s:
            run = await queries.get_run(s, dag_id, run_id)
        if run is None:
            raise NotFound(f"run '{run_id}' of DAG '{dag_id}' not found")
        return RunInfo.of(run)

    async def recent_runs(self, dag_ids: Sequence[str], per_dag: int = 10) -> dict[str, list[RunInfo]]:
        async with self._sessions() as s:
            runs = await queries.recent_runs(s, dag_ids, per_dag)
        return {d: [RunInfo.of(r) for r in rs] for d, rs in runs.items()}

    async def task_instances(self, dag_id: str, run_id: str) -> list[TaskInstanceInfo]:
        await self.get_run(dag_id, run_id)
        async with self._sessions() as s:
            rows = await queries.task_instances(s, dag_id, [run_id])
        return sorted((TaskInstanceInfo.of(t) for t in rows), key=lambda t: t.task_id)

    async def grid(self, dag_id: str, runs: int = 25) -> Grid:
        dag = await self.get_dag(dag_id)
        async with self._sessions() as s:
            run_rows = list(reversed(await queries.list_runs(s, dag_id, runs)))
            tis = await queries.task_instances(s, dag_id, [r.run_id for r in run_rows])
            ser = await queries.serialized(s, dag_id)
        task_ids = _task_order(ser.data if ser else {})
        cells: dict[str, dict[str, TaskInstanceInfo]] = {}
        for ti in tis:
            cells.setdefault(ti.run_id, {})[ti.task_id] = TaskInstanceInfo.of(ti)
            if ti.task_id not in task_ids:
                task_ids.append(ti.task_id)
        return Grid(dag=dag, task_ids=task_ids, runs=[RunInfo.of(r) for r in run_rows], cells=cells)

    async def dag_code(self, dag_id: str) -> str:
        from hashlib import sha256

        from spinner.db.models import DagCode

        dag = await self.get_dag(dag_id)
        async with self._sessions() as s:
            row = await s.get(DagCode, sha256(dag.fileloc.encode()).hexdigest())
        return row.source_code if row else ""

    async def import_errors(self) -> list[dict[str, Any]]:
        async with self._sessions() as s:
            rows = await queries.import_errors(s)
        return [
            {
                "partition": e.partition,
                "filename": e.filename,
                "stacktrace": e.stacktrace,
                "timestamp": iso(e.timestamp),
            }
            for e in rows
        ]

    async def pools(self) -> list[dict[str, Any]]:
        async with self._sessions() as s:
            rows = await queries.pools(s)
        return [{"name": p.name, "slots": p.slots, "used": used, "description": p.description} for p, used in rows]

    async def set_pool(self, name: str, slots: Any, description: Any) -> dict[str, Any]:
        """Pools are platform configuration, not partition state: the gateway writes them itself."""
        if not ID_RE.match(name):
            raise InvalidRequest("pool names are 1-250 letters, digits, '_', '-' or '.'")
        if not isinstance(slots, int) or isinstance(slots, bool) or slots < 0:
            raise InvalidRequest("slots must be a whole number, 0 or more")
        if description is not None and not isinstance(description, str):
            raise InvalidRequest("description must be a string")
        async with self._sessions() as s, s.begin():
            await queries.upsert_pool(s, name, slots, description or "")
        return next(p for p in await self.pools() if p["name"] == name)

    # --- actions -----------------------------------------------------------------------

    def _scheduler(self, address: str) -> scheduler_pb2_grpc.SchedulerServiceStub:
        ch = self._scheduler_channels.get(address)
        if ch is None:
            # One channel per scheduler address, kept: a partition's leader changes rarely.
            ch = self._scheduler_channels[address] = self._new_channel(address)
        return scheduler_pb2_grpc.SchedulerServiceStub(ch)

    async def _owner(self, dag_id: str) -> tuple[str, scheduler_pb2_grpc.SchedulerServiceStub]:
        """The partition of an active DAG and a stub to the scheduler that holds it now."""
        async with self._sessions() as s:
            dag = await queries.get_dag(s, dag_id)
            if dag is None:
                raise NotFound(f"DAG '{dag_id}' not found")
            address = await queries.lease_address(s, dag.partition, self._clock())
        if address is None:
            raise Unavailable(f"no scheduler holds partition {dag.partition} right now; try again shortly")
        return dag.partition, self._scheduler(address)

    async def _call(self, dag_id: str, span: str, call: Callable[[Any], Awaitable[T]]) -> T:
        """Routes an action to the DAG's scheduler, inside a span whose context travels with it."""
        with self._tracer.start_as_current_span(span, attributes={"dag_id": dag_id}):
            partition, stub = await self._owner(dag_id)
            try:
                return await call(stub)
            except grpc.aio.AioRpcError as e:
                raise from_rpc_error(e, f"the scheduler of {partition}") from None

    def _opts(self) -> dict[str, Any]:
        return {"timeout": self._timeout, "metadata": inject_metadata()}

    async def trigger(self, dag_id: str, conf: Any, run_id: str | None, user: str) -> RunInfo:
        if conf is None:
            conf = {}
        if not isinstance(conf, dict):
            raise InvalidRequest("conf must be a JSON object")
        if run_id is not None and (not isinstance(run_id, str) or not run_id.strip()):
            raise InvalidRequest("run_id must be a non-empty string")
        request = scheduler_pb2.TriggerDagRunRequest(
            dag_id=dag_id, conf_json=json.dumps(conf), run_id=run_id or "", triggered_by=user
        )
        reply = await self._call(dag_id, "gateway.trigger", lambda stub: stub.TriggerDagRun(request, **self._opts()))
        return await self.get_run(dag_id, reply.run.run_id)

    async def clear(self, dag_id: str, run_id: str, sel: dict[str, Any], only_failed: bool, user: str) -> list[str]:
        await self.get_run(dag_id, run_id)
        request = scheduler_pb2.ClearTaskInstancesRequest(
            selection=_selection(dag_id, run_id, sel), only_failed=only_failed, requested_by=user
        )
        reply = await self._call(dag_id, "gateway.clear", lambda stub: stub.ClearTaskInstances(request, **self._opts()))
        return list(reply.task_ids)

    async def mark(self, dag_id: str, run_id: str, sel: dict[str, Any], state: Any, user: str) -> list[str]:
        if state not in ("success", "failed"):
            raise InvalidRequest('state must be "success" or "failed"')
        await self.get_run(dag_id, run_id)
        request = scheduler_pb2.MarkTaskInstancesRequest(
            selection=_selection(dag_id, run_id, sel), state=state, requested_by=user
        )
        reply = await self._call(dag_id, "gateway.mark", lambda stub: stub.MarkTaskInstances(request, **self._opts()))
        return list(reply.task_ids)

    async def set_paused(self, dag_id: str, paused: Any, user: str) -> DagInfo:
        if not isinstance(paused, bool):
            raise InvalidRequest("is_paused must be true or false")
        request = scheduler_pb2.SetPausedRequest(dag_id=dag_id, paused=paused, requested_by=user)
        await self._call(dag_id, "gateway.set_paused", lambda stub: stub.SetPaused(request, **self._opts()))
        return await self.get_dag(dag_id)

    async def backfill(self, dag_id: str, start: Any, end: Any, conf: Any, user: str) -> dict[str, Any]:
        if not isinstance(start, str) or not isinstance(end, str):
            raise InvalidRequest("start and end are required, as ISO 8601 dates or times")
        if conf is not None and not isinstance(conf, dict):
            raise InvalidRequest("conf must be a JSON object")
        request = scheduler_pb2.BackfillRequest(
            dag_id=dag_id, start=start, end=end, conf_json=json.dumps(conf or {}), requested_by=user
        )
        reply = await self._call(dag_id, "gateway.backfill", lambda stub: stub.Backfill(request, **self._opts()))
        return {"run_ids": [r.run_id for r in reply.runs], "skipped_existing": reply.skipped_existing}

    async def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int | None, offset: int) -> LogInfo:
        if offset < 0:
            raise InvalidRequest("offset must be 0 or more")
        async with self._sessions() as s:
            ti = await queries.task_instance(s, dag_id, run_id, task_id)
        if ti is None:
            await self.get_run(dag_id, run_id)
            raise NotFound(f"task '{task_id}' of run '{run_id}' of DAG '{dag_id}' not found")
        if ti.try_number == 0:
            raise NotFound(f"task '{task_id}' of run '{run_id}' has not started yet: no log so far")
        number = try_number if try_number is not None else ti.try_number
        if number < 1 or number > ti.try_number:
            raise NotFound(f"task '{task_id}' of run '{run_id}' has no try {number} (tries so far: {ti.try_number})")
        try:
            reply = await self._logs.Read(
                logs_pb2.ReadLogRequest(
                    key=common_pb2.TaskTryKey(dag_id=dag_id, run_id=run_id, task_id=task_id, try_number=number),
                    from_offset=offset,
                ),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as e:
            raise from_rpc_error(e, "the logs service") from None
        return LogInfo(
            lines=[line.text for line in reply.lines],
            next_offset=reply.next_offset,
            source=reply.source,
            complete=reply.complete,
            try_number=number,
        )


def _selection(dag_id: str, run_id: str, sel: dict[str, Any]) -> scheduler_pb2.TaskSelection:
    task_ids = sel.get("task_ids") or []
    if not isinstance(task_ids, list) or not all(isinstance(t, str) for t in task_ids):
        raise InvalidRequest("task_ids must be a list of task ids")
    flags = {k: sel.get(k, False) for k in ("include_upstream", "include_downstream")}
    if not all(isinstance(v, bool) for v in flags.values()):
        raise InvalidRequest("include_upstream and include_downstream must be true or false")
    return scheduler_pb2.TaskSelection(
        run=common_pb2.DagRunRef(dag_id=dag_id, run_id=run_id), task_ids=task_ids, **flags
    )


def _task_order(data: dict[str, Any]) -> list[str]:
    """Task ids upstream first (the grid's row order), from a serialized DAG."""
    tasks = {t["task_id"]: t for t in data.get("tasks", [])}
    order: list[str] = []
    seen: set[str] = set()

    def visit(task_id: str) -> None:
        if task_id in seen or task_id not in tasks:
            return
        seen.add(task_id)
        for up in sorted(tasks[task_id]["upstream_task_ids"]):
            visit(up)
        order.append(task_id)

    for task_id in sorted(tasks):
        visit(task_id)
    return order

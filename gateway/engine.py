"""The gateway's domain: listings from the database, actions routed to the owning services.

Every method takes the `Actor` making the request. Reads show only DAGs the actor may
read (another DAG is "not found", as if it did not exist); actions need edit on the
DAG, and each one, allowed or refused, is written to the audit log.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any, TypeVar

import grpc
from opentelemetry import trace
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway import jsonio, mapped, queries
from gateway.audit import AuditLog
from gateway.auth import Actor
from gateway.callbacks import RunCallbacks, callback_log_try, run_callbacks
from gateway.errors import (
    Forbidden,
    GatewayError,
    InvalidRequest,
    LogMissing,
    NotFound,
    Unavailable,
    from_rpc_error,
)
from gateway.logs import SERVICE, LogFollow, log_info
from gateway.queries import DagFilter
from gateway.templates_info import describe
from gateway.views import (
    MAX_OFFSET,
    DagInfo,
    Grid,
    GridRow,
    LogInfo,
    MappedSummary,
    RunInfo,
    TaskInstanceInfo,
    TaskNode,
    TryInfo,
    check_limit,
    iso,
    split_mapped,
)
from gateway.xcoms import XComInfo, task_xcoms
from spinner import routing, triggering
from spinner.db import auth as db_auth
from spinner.db.callbacks import is_callback_task_id
from spinner.db.models import DagCode
from spinner.grpcserver import channel
from spinner.identity import on_behalf_of
from spinner.mapping import NO_MAP_INDEX
from spinner.routing import SchedulerRouter
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


@dataclass(frozen=True)
class SnapshotInfo:
    """This host's DAG snapshot as dagsync reports it (issue 5): which bundle, and how stale."""

    bundle_version: str
    stale_seconds: float
    last_error: str
    source: str


@dataclass(frozen=True)
class RunDot:
    run_id: str
    state: str


@dataclass(frozen=True)
class DagView:
    grid: Grid
    nodes: list[TaskNode]
    code: str
    details: dict[str, Any]
    code_refused: str = ""  # why `code` is empty: its file also defines DAGs the user may not read


TERMINAL_RUN_STATES = ("success", "failed")
MAX_POOL_SLOTS = 2**31 - 1  # what pool.slots (a 32-bit INTEGER column) holds


class Gateway:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        logs_channel: grpc.aio.Channel,
        clock: Callable[[], dt.datetime],
        tracer: trace.Tracer,
        rpc_timeout: float = 10.0,
        scheduler_channel: Callable[[str], grpc.aio.Channel] = channel,
        readers: async_sessionmaker[AsyncSession] | None = None,
        dagsync_channel: grpc.aio.Channel | None = None,
    ) -> None:
        """`readers` serve the sessions that only read (see spinner.db.engine.create_read_engine)."""
        self._sessions = sessions
        self._readers = readers or sessions
        self._dagsync = dagsync_pb2_grpc.DagSyncServiceStub(dagsync_channel) if dagsync_channel else None
        self._schedulers = SchedulerRouter(self._readers, clock, scheduler_channel)
        self._logs = logs_pb2_grpc.LogsServiceStub(logs_channel)
        self._clock = clock
        self._tracer = tracer
        self._timeout = rpc_timeout
        self._closing = asyncio.Event()
        self.audit = AuditLog(sessions, clock, readers=self._readers)

    async def snapshot(self) -> SnapshotInfo | None:
        """The local dagsync's status; None when there is none or it does not answer (the page still renders)."""
        if self._dagsync is None:
            return None
        try:
            s = await self._dagsync.GetSnapshot(dagsync_pb2.GetSnapshotRequest(), timeout=1.0)
        except grpc.RpcError:
            return None
        return SnapshotInfo(s.bundle_version, s.stale_seconds, s.last_error, s.source)

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self._sessions

    @property
    def readers(self) -> async_sessionmaker[AsyncSession]:
        return self._readers

    async def aclose(self) -> None:
        await self._schedulers.aclose()

    async def start(self) -> int:
        """At gateway start: the built-in roles, and every DAG's access_control synced. Returns the changes.

        Gateways starting together may race to create the same role or permission: the loser of
        that unique-key race reads what the winner wrote and tries again.
        """
        for attempt in range(3):
            try:
                async with self._sessions() as s, s.begin():
                    await db_auth.ensure_defaults(s)
                    return await db_auth.sync_acl(s, await db_auth.declared_acls(s))
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    # --- reads -------------------------------------------------------------------------

    async def list_dags(
        self, actor: Actor, limit: int = 100, offset: int = 0, flt: DagFilter | None = None
    ) -> tuple[list[DagInfo], int]:
        check_limit(limit, offset)
        async with self._readers() as s:
            rows, total = await queries.filtered_dags(s, flt or DagFilter(), actor.principal.readable(), limit, offset)
        return [DagInfo.of(r) for r in rows], total

    async def dag_facets(self, actor: Actor) -> dict[str, list[Any]]:
        """The owners, tags and partitions the DAG list's filters offer: those of DAGs the actor may read."""
        async with self._readers() as s:
            return await queries.dag_facets(s, actor.principal.readable())

    async def get_dag(self, actor: Actor, dag_id: str) -> DagInfo:
        if not actor.principal.can_read(dag_id):
            raise NotFound(f"DAG '{dag_id}' not found")
        async with self._readers() as s:
            row = await queries.get_dag(s, dag_id)
        if row is None:
            raise NotFound(f"DAG '{dag_id}' not found")
        return DagInfo.of(row)

    async def list_runs(self, actor: Actor, dag_id: str, limit: int = 25) -> list[RunInfo]:
        check_limit(limit)
        await self.get_dag(actor, dag_id)
        async with self._readers() as s:
            return [RunInfo.of(r, actor.principal.can_read) for r in await queries.list_runs(s, dag_id, limit)]

    async def get_run(self, actor: Actor, dag_id: str, run_id: str) -> RunInfo:
        if not actor.principal.can_read(dag_id):
            raise NotFound(f"DAG '{dag_id}' not found")
        async with self._readers() as s:
            run = await queries.get_run(s, dag_id, run_id)
        if run is None:
            raise NotFound(f"run '{run_id}' of DAG '{dag_id}' not found")
        return RunInfo.of(run, actor.principal.can_read)

    async def run_callbacks(self, actor: Actor, dag_id: str, run_id: str) -> RunCallbacks:
        """The run's DAG callbacks and its missed deadline (gateway/callbacks.py)."""
        await self.get_run(actor, dag_id, run_id)
        async with self._readers() as s:
            return await run_callbacks(s, dag_id, run_id)

    async def recent_runs(self, actor: Actor, dag_ids: Sequence[str], per_dag: int = 10) -> dict[str, list[RunDot]]:
        """Each DAG's newest runs as (run_id, state), for the squares of the DAG list."""
        ids = [d for d in dag_ids if actor.principal.can_read(d)]
        async with self._readers() as s:
            runs = await queries.recent_run_states(s, ids, per_dag)
        return {d: [RunDot(run_id, state) for run_id, state in rs] for d, rs in runs.items()}

    async def task_instances(self, actor: Actor, dag_id: str, run_id: str) -> list[TaskInstanceInfo]:
        await self.get_run(actor, dag_id, run_id)
        async with self._readers() as s:
            rows = await queries.task_instances(s, dag_id, [run_id])
        return sorted((TaskInstanceInfo.of(t) for t in rows), key=lambda t: (t.task_id, t.map_index))

    async def watch_run(
        self, actor: Actor, dag_id: str, run_id: str, interval: float
    ) -> AsyncIterator[tuple[RunInfo, list[TaskInstanceInfo]]]:
        """The run and its task instances, then each change, until the run has ended (re-read every interval).

        Instances are told apart by (task_id, map_index): when a mapped task is expanded, its -1 row
        becomes instance 0 and instances 1 .. n-1 appear, each a change.
        """
        seen: dict[tuple[str, int], TaskInstanceInfo] = {}
        last_state = ""
        while True:
            run = await self.get_run(actor, dag_id, run_id)
            tis = await self.task_instances(actor, dag_id, run_id)
            changed = [t for t in tis if seen.get((t.task_id, t.map_index)) != t]
            seen = {(t.task_id, t.map_index): t for t in tis}
            if changed or run.state != last_state:
                last_state = run.state
                yield run, changed
            if run.state in TERMINAL_RUN_STATES:
                return
            await asyncio.sleep(interval)

    async def tries(
        self, actor: Actor, dag_id: str, run_id: str, task_id: str, map_index: int = NO_MAP_INDEX
    ) -> list[TryInfo]:
        """The ended attempts of a task instance in a run, first try first."""
        await self.get_run(actor, dag_id, run_id)
        async with self._readers() as s:
            await mapped.instance(s, dag_id, run_id, task_id, mapped.check_map_index(map_index))
            return [TryInfo.of(h) for h in await queries.tries(s, dag_id, run_id, task_id, map_index)]

    async def xcoms(
        self, actor: Actor, dag_id: str, run_id: str, task_id: str, map_index: int | None = None
    ) -> list[XComInfo]:
        """The XComs a task instance has pushed (its current try's), by map index and key; with
        map_index None, those of every instance of the task."""
        return await task_xcoms(self._readers, self.audit, actor, dag_id, run_id, task_id, map_index)

    async def grid(self, actor: Actor, dag_id: str, runs: int = 25) -> Grid:
        return (await self.dag_view(actor, dag_id, runs)).grid

    async def dag_view(self, actor: Actor, dag_id: str, runs: int = 25, *, with_code: bool = False) -> DagView:
        """Everything the DAG page shows, read in one session with a handful of queries.

        `with_code`: the DAG file's source too, when the user may read every DAG the file defines
        (else it would show them the others' code); a refusal says so and is audited."""
        if not actor.principal.can_read(dag_id):
            raise NotFound(f"DAG '{dag_id}' not found")
        resource = db_auth.dag_resource(dag_id)
        async with self._readers() as s:
            row = await queries.get_dag(s, dag_id)
            if row is None:
                raise NotFound(f"DAG '{dag_id}' not found")
            dag = DagInfo.of(row)
            run_rows = list(reversed(await queries.list_runs(s, dag_id, runs)))
            tis = await queries.task_instances(s, dag_id, [r.run_id for r in run_rows])
            ser = await queries.serialized(s, dag_id)
            code, code_refused = None, ""
            if with_code:
                readable = actor.principal.readable()
                in_file = (await queries.dags_by_file(s, [dag.fileloc])).get(dag.fileloc, {dag_id})
                if readable is None or in_file <= readable:
                    code = await s.get(DagCode, sha256(dag.fileloc.encode()).hexdigest())
                else:
                    code_refused = (
                        f"The code of DAG '{dag_id}' is not shown: its file {dag.fileloc} also defines "
                        f"{len(in_file - readable)} DAG(s) you may not read."
                    )
            roles = await db_auth.roles_on(s, [resource, db_auth.ALL_DAGS])
        data = ser.data if ser else {}
        task_ids = _task_order(data)
        by_run: dict[str, list[TaskInstanceInfo]] = {}
        for ti in tis:
            by_run.setdefault(ti.run_id, []).append(TaskInstanceInfo.of(ti))
            if ti.task_id not in task_ids:
                task_ids.append(ti.task_id)
        cells: dict[str, dict[str, TaskInstanceInfo]] = {}
        summaries: dict[str, dict[str, MappedSummary]] = {}
        for run_id, run_tis in by_run.items():
            cells[run_id], summaries[run_id] = split_mapped(run_tis)
        # Mapped in the DAG file, or expanded in a run (a task since changed still shows as it ran).
        mapped_ids = {t["task_id"] for t in data.get("tasks", []) if t.get("expand") is not None}
        mapped_ids.update(task_id for run in summaries.values() for task_id in run)
        grid = Grid(
            dag=dag, task_ids=task_ids, runs=[RunInfo.of(r, actor.principal.can_read) for r in run_rows], cells=cells,
            rows=grid_rows(
                task_ids,
                {t["task_id"]: t.get("task_group") for t in data.get("tasks", [])},
                dict(data.get("task_groups") or {}),
                frozenset(mapped_ids),
            ),
            mapped=summaries,
        )  # fmt: skip
        tasks = {t["task_id"]: t for t in data.get("tasks", [])}
        nodes = [
            TaskNode(t, str(tasks[t].get("operator", "")), sorted(tasks[t].get("upstream_task_ids", [])))
            for t in _task_order(data)
        ]
        in_force = {role: sorted({a for a, _ in perms}) for role, perms in roles.items()}
        in_force[db_auth.ADMIN_ROLE] = list(db_auth.DAG_ACTIONS)
        declared = data.get("access_control") or {}
        details = {
            "access_control": {str(r): [str(a) for a in acts] for r, acts in declared.items()},
            "permissions": dict(sorted(in_force.items())),
            "can_edit": actor.principal.can_edit(dag_id),
            **describe(data),  # timezone and params (gateway/templates_info.py)
        }
        if code_refused:
            await self.audit.record(actor, "code.view", "denied", dag_id=dag_id, details={"fileloc": dag.fileloc})
        return DagView(
            grid=grid, nodes=nodes, code=code.source_code if code else "", details=details, code_refused=code_refused
        )

    async def graph(self, actor: Actor, dag_id: str) -> list[TaskNode]:
        """The DAG's tasks, upstream first, each with its upstream task ids."""
        return (await self.dag_view(actor, dag_id, runs=1)).nodes

    async def dag_details(self, actor: Actor, dag_id: str) -> dict[str, Any]:
        """What the details tab shows besides the DAG row: its access control, declared and in force."""
        return (await self.dag_view(actor, dag_id, runs=1)).details

    async def dag_code(self, actor: Actor, dag_id: str) -> str:
        view = await self.dag_view(actor, dag_id, runs=1, with_code=True)
        if view.code_refused:
            raise Forbidden(view.code_refused)
        return view.code

    async def import_errors(self, actor: Actor) -> list[dict[str, Any]]:
        """Import errors of the files whose every DAG the user may read (a file that defines no DAG
        any more: only for those who may read every DAG), so a traceback never shows a hidden DAG's code."""
        readable = actor.principal.readable()
        async with self._readers() as s:
            rows = await queries.import_errors(s)
            owners = await queries.dags_by_file(s, [e.filename for e in rows]) if readable is not None else {}
        if readable is not None:
            rows = [e for e in rows if owners.get(e.filename) and owners[e.filename] <= readable]
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
        async with self._readers() as s:
            rows = await queries.pools(s)
        return [{"name": p.name, "slots": p.slots, "used": used, "description": p.description} for p, used in rows]

    async def set_pool(self, actor: Actor, name: str, slots: Any, description: Any) -> dict[str, Any]:
        """Pools are platform configuration, not partition state: the gateway writes them itself. Admins only."""
        if not actor.principal.is_admin:
            await self.audit.record(actor, "pool.set", "denied", details={"pool": name})
            raise Forbidden("only an Admin may change pools")
        if not ID_RE.match(name):
            raise InvalidRequest("pool names are 1-250 letters, digits, '_', '-' or '.'")
        if not isinstance(slots, int) or isinstance(slots, bool) or not 0 <= slots <= MAX_POOL_SLOTS:
            raise InvalidRequest(f"slots must be a whole number from 0 to {MAX_POOL_SLOTS}")
        if description is not None and not isinstance(description, str):
            raise InvalidRequest("description must be a string")
        async with self._sessions() as s, s.begin():
            await queries.upsert_pool(s, name, slots, description or "")
        await self.audit.record(actor, "pool.set", "ok", details={"pool": name, "slots": slots})
        return next(p for p in await self.pools() if p["name"] == name)

    # --- actions -----------------------------------------------------------------------

    async def _act(
        self,
        actor: Actor,
        action: str,
        dag_id: str,
        do: Callable[[], Awaitable[T]],
        *,
        run_id: str | None = None,
        task_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> T:
        """Checks edit on the DAG, runs the action, and audits the attempt whatever its outcome."""
        p = actor.principal

        async def audit(outcome: str, extra: dict[str, Any] | None) -> None:
            await self.audit.record(
                actor, action, outcome, dag_id=dag_id, run_id=run_id, task_id=task_id, details=extra
            )

        if not p.can_edit(dag_id):
            await audit("denied", details)
            if not p.can_read(dag_id):
                raise NotFound(f"DAG '{dag_id}' not found")
            raise Forbidden(f"{p.username} may not {action} DAG '{dag_id}': that needs can_dag_edit on it")
        try:
            result = await do()
        except GatewayError as e:
            await audit("error", {**(details or {}), "error": str(e)})
            raise
        await audit("ok", details)
        return result

    async def _owner(self, dag_id: str) -> tuple[str, scheduler_pb2_grpc.SchedulerServiceStub]:
        """The partition of an active DAG and a stub to the scheduler that holds it now (spinner/routing.py)."""
        try:
            return await self._schedulers.owner(dag_id)
        except routing.DagNotFound as e:
            raise NotFound(str(e)) from None
        except routing.NoScheduler as e:
            raise Unavailable(str(e)) from None

    async def _call(self, dag_id: str, span: str, call: Callable[[Any], Awaitable[T]]) -> T:
        """Routes an action to the DAG's scheduler, inside a span whose context travels with it."""
        with self._tracer.start_as_current_span(span, attributes={"dag_id": dag_id}):
            partition, stub = await self._owner(dag_id)
            try:
                return await call(stub)
            except grpc.aio.AioRpcError as e:
                raise from_rpc_error(e, f"the scheduler of {partition}") from None

    def _opts(self, actor: Actor) -> dict[str, Any]:
        """A call's timeout and metadata: its trace, and the user it is made for (already authorised)."""
        return {"timeout": self._timeout, "metadata": [*inject_metadata(), *on_behalf_of(actor.username)]}

    async def trigger(self, actor: Actor, dag_id: str, conf: Any, run_id: str | None) -> RunInfo:
        if conf is None:
            conf = {}
        if not isinstance(conf, dict):
            raise InvalidRequest("conf must be a JSON object")
        jsonio.check_value(conf, "conf")
        if run_id is not None and (not isinstance(run_id, str) or not run_id.strip()):
            raise InvalidRequest("run_id must be a non-empty string")
        problem = None if run_id is None else triggering.run_id_problem(run_id)
        if problem:
            raise InvalidRequest(problem)
        request = scheduler_pb2.TriggerDagRunRequest(
            dag_id=dag_id,
            conf_json=json.dumps(conf),
            run_id=run_id or "",
            triggered_by=triggering.person(actor.username),
        )

        async def do() -> RunInfo:
            reply = await self._call(
                dag_id, "gateway.trigger", lambda stub: stub.TriggerDagRun(request, **self._opts(actor))
            )
            return await self.get_run(actor, dag_id, reply.run.run_id)

        run = await self._act(actor, "trigger", dag_id, do, run_id=run_id, details={"conf": conf} if conf else None)
        return run

    async def _selected(
        self, actor: Actor, dag_id: str, run_id: str, sel: dict[str, Any]
    ) -> scheduler_pb2.TaskSelection:
        """The selection an action applies to, checked against the run: its map_indexes name
        instances every task in its task_ids has. Raises InvalidRequest or NotFound."""
        selection = _selection(dag_id, run_id, sel)
        await self.get_run(actor, dag_id, run_id)
        async with self._readers() as s:
            await mapped.check_selected(s, dag_id, run_id, selection.task_ids, selection.map_indexes)
        return selection

    async def clear(self, actor: Actor, dag_id: str, run_id: str, sel: dict[str, Any], only_failed: bool) -> list[str]:
        """Clears the selected task instances; with `map_indexes`, only those instances of the selected
        mapped tasks. A malformed selection is refused (and audited) after the edit check."""

        async def do() -> list[str]:
            selection = await self._selected(actor, dag_id, run_id, sel)
            request = scheduler_pb2.ClearTaskInstancesRequest(
                selection=selection, only_failed=only_failed, requested_by=actor.username
            )
            reply = await self._call(
                dag_id, "gateway.clear", lambda stub: stub.ClearTaskInstances(request, **self._opts(actor))
            )
            return list(reply.task_ids)

        return await self._act(actor, "clear", dag_id, do, run_id=run_id, task_id=_one(sel), details=_sel(sel))

    async def mark(self, actor: Actor, dag_id: str, run_id: str, sel: dict[str, Any], state: Any) -> list[str]:
        if state not in ("success", "failed"):
            raise InvalidRequest('state must be "success" or "failed"')

        async def do() -> list[str]:
            selection = await self._selected(actor, dag_id, run_id, sel)
            request = scheduler_pb2.MarkTaskInstancesRequest(
                selection=selection, state=state, requested_by=actor.username
            )
            reply = await self._call(
                dag_id, "gateway.mark", lambda stub: stub.MarkTaskInstances(request, **self._opts(actor))
            )
            return list(reply.task_ids)

        details = {**_sel(sel), "state": state}
        return await self._act(actor, f"mark_{state}", dag_id, do, run_id=run_id, task_id=_one(sel), details=details)

    async def set_paused(self, actor: Actor, dag_id: str, paused: Any) -> DagInfo:
        if not isinstance(paused, bool):
            raise InvalidRequest("is_paused must be true or false")
        request = scheduler_pb2.SetPausedRequest(dag_id=dag_id, paused=paused, requested_by=actor.username)

        async def do() -> DagInfo:
            await self._call(dag_id, "gateway.set_paused", lambda stub: stub.SetPaused(request, **self._opts(actor)))
            return await self.get_dag(actor, dag_id)

        return await self._act(actor, "pause" if paused else "unpause", dag_id, do)

    async def backfill(self, actor: Actor, dag_id: str, start: Any, end: Any, conf: Any) -> dict[str, Any]:
        if not isinstance(start, str) or not isinstance(end, str):
            raise InvalidRequest("start and end are required, as ISO 8601 dates or times")
        if conf is not None and not isinstance(conf, dict):
            raise InvalidRequest("conf must be a JSON object")
        jsonio.check_value(conf, "conf")
        request = scheduler_pb2.BackfillRequest(
            dag_id=dag_id, start=start, end=end, conf_json=json.dumps(conf or {}), requested_by=actor.username
        )

        async def do() -> dict[str, Any]:
            reply = await self._call(
                dag_id, "gateway.backfill", lambda stub: stub.Backfill(request, **self._opts(actor))
            )
            return {"run_ids": [r.run_id for r in reply.runs], "skipped_existing": reply.skipped_existing}

        return await self._act(actor, "backfill", dag_id, do, details={"start": start, "end": end})

    async def refresh(self, actor: Actor, dag_id: str) -> dict[str, Any]:
        """Re-applies the DAG's declared access_control to the roles now (it also happens at each parse)."""

        async def do() -> dict[str, Any]:
            async with self._sessions() as s, s.begin():
                if await queries.get_dag(s, dag_id) is None:
                    raise NotFound(f"DAG '{dag_id}' not found")
                acls = await db_auth.declared_acls(s, [dag_id])
                changes = await db_auth.sync_acl(s, acls)
            return {"dag_id": dag_id, "access_control": acls.get(dag_id, {}), "changes": changes}

        return await self._act(actor, "refresh", dag_id, do)

    async def _log_try(
        self, actor: Actor, dag_id: str, run_id: str, task_id: str, try_number: int | None, map_index: int
    ) -> int:
        """The try whose log is asked for (the latest when None), after checking the actor may read the DAG."""
        if not actor.principal.can_read(dag_id):
            raise NotFound(f"DAG '{dag_id}' not found")
        mapped.check_map_index(map_index)
        if is_callback_task_id(task_id):  # a DAG callback's process: its log reads like a try's
            await self.get_run(actor, dag_id, run_id)
            async with self._readers() as s:
                try:
                    return await callback_log_try(s, dag_id, run_id, task_id, try_number)
                except LookupError as e:
                    raise NotFound(str(e)) from None
        async with self._readers() as s:
            ti = await mapped.instance(s, dag_id, run_id, task_id, map_index)
        if ti is None:
            await self.get_run(actor, dag_id, run_id)
            raise NotFound(f"task '{task_id}' of run '{run_id}' of DAG '{dag_id}' not found")
        what = f"task '{task_id}'{f' [{map_index}]' if map_index != NO_MAP_INDEX else ''} of run '{run_id}'"
        if ti.try_number == 0:
            raise NotFound(f"{what} has not started yet: no log so far")
        number = try_number if try_number is not None else ti.try_number
        if number < 1 or number > ti.try_number:
            raise NotFound(f"{what} has no try {number} (tries so far: {ti.try_number})")
        return number

    async def task_log(
        self,
        actor: Actor,
        dag_id: str,
        run_id: str,
        task_id: str,
        try_number: int | None,
        offset: int,
        map_index: int = NO_MAP_INDEX,
    ) -> LogInfo:
        """A chunk of a try's log from a line offset. Raises LogMissing when the try has written none yet."""
        if not 0 <= offset <= MAX_OFFSET:
            raise InvalidRequest(f"offset must be between 0 and {MAX_OFFSET}")
        number = await self._log_try(actor, dag_id, run_id, task_id, try_number, map_index)
        key = _try_key(dag_id, run_id, task_id, number, map_index)
        try:
            reply = await self._logs.Read(logs_pb2.ReadLogRequest(key=key, from_offset=offset), **self._opts(actor))
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                raise LogMissing(e.details() or "no log yet") from None
            raise from_rpc_error(e, SERVICE) from None
        return log_info(reply, number)

    async def follow_log(
        self,
        actor: Actor,
        dag_id: str,
        run_id: str,
        task_id: str,
        try_number: int | None,
        offset: int,
        map_index: int = NO_MAP_INDEX,
    ) -> LogFollow:
        """A try's log from a line offset on, as it grows, until it is complete (the logs service's Follow).

        Returns once the first chunk has come, so a refusal is an error here, not a broken stream;
        the caller must iterate the result's chunks() to its end or close() it.
        """
        if not 0 <= offset <= MAX_OFFSET:
            raise InvalidRequest(f"offset must be between 0 and {MAX_OFFSET}")
        number = await self._log_try(actor, dag_id, run_id, task_id, try_number, map_index)
        key = _try_key(dag_id, run_id, task_id, number, map_index)
        # No deadline: the call lasts as long as the try runs, and ends when the reader leaves or the gateway stops.
        call = self._logs.Follow(
            logs_pb2.FollowLogRequest(key=key, from_offset=offset),
            metadata=[*inject_metadata(), *on_behalf_of(actor.username)],
        )
        return await LogFollow.open(call, number, self._closing)

    def close_log_streams(self) -> None:
        """Ends every log being followed (the gateway is stopping; a browser will reconnect to another)."""
        self._closing.set()


def _try_key(dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int) -> common_pb2.TaskTryKey:
    """map_index is always set, -1 included: a reader that takes the field as it is (not through
    spinner.mapping.key_map_index) still reads an unmapped task's -1, not the proto default 0."""
    return common_pb2.TaskTryKey(dag_id=dag_id, run_id=run_id, task_id=task_id, try_number=try_number,
                                 map_index=map_index)  # fmt: skip


def _one(sel: dict[str, Any]) -> str | None:
    """The audit entry's task: the selection's one task id, if it names one (it may be malformed yet: audited too)."""
    task_ids = sel.get("task_ids")
    one = task_ids[0] if isinstance(task_ids, list) and len(task_ids) == 1 else None
    return one if isinstance(one, str) else None


def _sel(sel: dict[str, Any]) -> dict[str, Any]:
    """What the audit entry says of the selection (map_indexes as the request gave them, even when refused)."""
    keys = ("task_ids", "include_upstream", "include_downstream", "map_indexes")
    return {k: v for k, v in sel.items() if k in keys and v}


def _selection(dag_id: str, run_id: str, sel: dict[str, Any]) -> scheduler_pb2.TaskSelection:
    task_ids = sel.get("task_ids") or []
    if not isinstance(task_ids, list) or not all(isinstance(t, str) for t in task_ids):
        raise InvalidRequest("task_ids must be a list of task ids")
    flags = {k: sel.get(k, False) for k in ("include_upstream", "include_downstream")}
    if not all(isinstance(v, bool) for v in flags.values()):
        raise InvalidRequest("include_upstream and include_downstream must be true or false")
    return scheduler_pb2.TaskSelection(
        run=common_pb2.DagRunRef(dag_id=dag_id, run_id=run_id), task_ids=task_ids,
        map_indexes=mapped.parse_map_indexes(sel.get("map_indexes")), **flags,
    )  # fmt: skip


def grid_rows(
    task_ids: list[str],
    groups: dict[str, str | None],
    parents: dict[str, str | None],
    mapped_ids: frozenset[str] = frozenset(),
) -> list[GridRow]:
    """The grid's rows: tasks in `task_ids` order, each TaskGroup's tasks together under a header row,
    a group placed where its first task comes. `groups`: task -> innermost group; `parents`: group -> parent.
    A mapped task (in `mapped_ids`) is one row like any task; its row says it is mapped."""
    tree: dict[str | None, list[tuple[bool, str]]] = {}  # group (None: the DAG) -> children in order
    members: dict[str, list[str]] = {}
    for task_id in task_ids:
        child: tuple[bool, str] = (False, task_id)
        group = groups.get(task_id)
        seen: set[str] = set()
        while True:
            siblings = tree.setdefault(group, [])
            if child not in siblings:
                siblings.append(child)
            if group is None or group in seen:
                break
            seen.add(group)
            members.setdefault(group, []).append(task_id)
            child, group = (True, group), parents.get(group)
    rows: list[GridRow] = []

    def walk(parent: str | None, depth: int) -> None:
        for is_group, ident in tree.get(parent, []):
            if is_group:
                rows.append(GridRow(ident, depth, True, tuple(members.get(ident, ()))))
                walk(ident, depth + 1)
            else:
                rows.append(GridRow(ident, depth, mapped=ident in mapped_ids))

    walk(None, 0)
    return rows


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

"""SpinnerApi: the public gRPC API, over the same engine (and the same access control and audit) as REST.

Every call carries "authorization: Bearer <API token>" in its metadata.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import grpc

from gateway import jsonio
from gateway.auth import Actor, Authenticator
from gateway.engine import Gateway
from gateway.errors import GatewayError, Unauthenticated
from gateway.templates_info import dag_description, rendered_fields
from gateway.varconn import VarConn
from gateway.varconn_grpc import VarConnRpcs
from gateway.views import DagInfo, LogInfo, RunInfo, TaskInstanceInfo
from spinner.mapping import key_map_index
from spinner.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc


async def _abort(context: grpc.aio.ServicerContext, e: GatewayError) -> NoReturn:
    await context.abort(e.grpc_status, str(e))
    raise AssertionError("unreachable")


def _run(r: RunInfo) -> gateway_pb2.DagRun:
    return gateway_pb2.DagRun(
        dag_id=r.dag_id, run_id=r.run_id, state=r.state, run_type=r.run_type, logical_date=r.logical_date or "",
        start_date=r.start_date or "", end_date=r.end_date or "", conf_json=jsonio.dumps(r.conf),
    )  # fmt: skip


def _dag(d: DagInfo) -> gateway_pb2.Dag:
    return gateway_pb2.Dag(
        dag_id=d.dag_id, partition=d.partition, tier=d.tier, schedule=d.schedule or "", is_paused=d.is_paused,
        owner=d.owner, tags=d.tags, description=d.description, bundle_version=d.bundle_version, fileloc=d.fileloc,
    )  # fmt: skip


def _param(p: dict[str, Any]) -> gateway_pb2.DagParam:
    return gateway_pb2.DagParam(
        name=p["name"], has_default=p["has_default"], default_json=json.dumps(p["default"]),
        schema_json=json.dumps(p["schema"]), description=p["description"] or "",
    )  # fmt: skip


def _ti(t: TaskInstanceInfo) -> gateway_pb2.TaskInstance:
    return gateway_pb2.TaskInstance(
        dag_id=t.dag_id, run_id=t.run_id, task_id=t.task_id, state=t.state or "", try_number=t.try_number,
        max_tries=t.max_tries, start_date=t.start_date or "", end_date=t.end_date or "", map_index=t.map_index,
    )  # fmt: skip


def _log(chunk: LogInfo) -> gateway_pb2.GetTaskLogResponse:
    return gateway_pb2.GetTaskLogResponse(
        lines=[line.text for line in chunk.lines], next_offset=chunk.next_offset, source=chunk.source,
        complete=chunk.complete, try_number=chunk.try_number,
    )  # fmt: skip


def _selection(sel: gateway_pb2.SelectedTasks) -> dict[str, Any]:
    """The selection as REST's JSON body has it, for the engine's one check of both."""
    return {
        "task_ids": list(sel.task_ids), "include_upstream": sel.include_upstream,
        "include_downstream": sel.include_downstream, "map_indexes": list(sel.map_indexes),
    }  # fmt: skip


def _peer(context: grpc.aio.ServicerContext) -> str:
    """ipv4:127.0.0.1:5555 -> 127.0.0.1; ipv6:[::1]:5555 -> ::1."""
    peer = str(context.peer() or "")
    kind, _, rest = peer.partition(":")
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    return peer[:100]


class SpinnerApiServicer(VarConnRpcs, gateway_pb2_grpc.SpinnerApiServicer):
    def __init__(
        self, gateway: Gateway, auth: Authenticator, *, watch_interval: float = 1.0, varconn: VarConn | None = None
    ) -> None:
        self._gw = gateway
        self._auth = auth
        self._watch_interval = watch_interval
        self._varconn = varconn  # Variable* and Connection* (gateway/varconn_grpc.py)

    async def _actor(self, context: grpc.aio.ServicerContext) -> Actor:
        metadata = {k.lower(): v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        credential = metadata.get("authorization", "")
        scheme, _, token = credential.partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("send the metadata 'authorization: Bearer <API token>'")
            return Actor(await self._auth.token_principal(token.strip()), _peer(context))
        except Unauthenticated as e:
            await self._gw.audit.token_refused(_peer(context), credential, str(e), {"via": "grpc"})
            raise

    async def ListDags(
        self, request: gateway_pb2.ListDagsRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ListDagsResponse:
        try:
            dags, total = await self._gw.list_dags(await self._actor(context), request.limit or 100, request.offset)
        except GatewayError as e:
            await _abort(context, e)
        return gateway_pb2.ListDagsResponse(dags=[_dag(d) for d in dags], total=total)

    async def GetDag(self, request: gateway_pb2.GetDagRequest, context: grpc.aio.ServicerContext) -> gateway_pb2.Dag:
        try:
            actor = await self._actor(context)
            dag = await self._gw.get_dag(actor, request.dag_id)
            description = await dag_description(self._gw, actor, request.dag_id)
        except GatewayError as e:
            await _abort(context, e)
        pb = _dag(dag)
        pb.timezone = description["timezone"]
        pb.params.extend(_param(p) for p in description["params"])
        return pb

    async def GetRenderedFields(
        self, request: gateway_pb2.GetRenderedFieldsRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.RenderedFields:
        k = request.key
        try:
            info = await rendered_fields(
                self._gw, await self._actor(context), k.dag_id, k.run_id, k.task_id, k.try_number or None,
                key_map_index(k),
            )  # fmt: skip
        except GatewayError as e:
            await _abort(context, e)
        key = common_pb2.TaskTryKey(
            dag_id=k.dag_id, run_id=k.run_id, task_id=k.task_id, try_number=info.try_number, map_index=info.map_index
        )
        return gateway_pb2.RenderedFields(
            key=key, fields_json=json.dumps(info.rendered_fields), rendered_at=info.rendered_at or ""
        )

    async def TriggerDag(
        self, request: gateway_pb2.TriggerDagRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.DagRun:
        try:
            actor = await self._actor(context)
            conf = jsonio.loads(request.conf_json, "conf_json") if request.conf_json.strip() else {}
            run = await self._gw.trigger(actor, request.dag_id, conf, request.run_id or None)
        except GatewayError as e:
            await _abort(context, e)
        return _run(run)

    async def ListDagRuns(
        self, request: gateway_pb2.ListDagRunsRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ListDagRunsResponse:
        try:
            runs = await self._gw.list_runs(await self._actor(context), request.dag_id, request.limit or 25)
        except GatewayError as e:
            await _abort(context, e)
        return gateway_pb2.ListDagRunsResponse(runs=[_run(r) for r in runs])

    async def GetDagRun(
        self, request: gateway_pb2.GetDagRunRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.DagRun:
        try:
            run = await self._gw.get_run(await self._actor(context), request.run.dag_id, request.run.run_id)
        except GatewayError as e:
            await _abort(context, e)
        return _run(run)

    async def ListTaskInstances(
        self, request: gateway_pb2.ListTaskInstancesRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ListTaskInstancesResponse:
        try:
            tis = await self._gw.task_instances(await self._actor(context), request.run.dag_id, request.run.run_id)
        except GatewayError as e:
            await _abort(context, e)
        return gateway_pb2.ListTaskInstancesResponse(task_instances=[_ti(t) for t in tis])

    async def WatchDagRun(
        self, request: gateway_pb2.WatchDagRunRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[gateway_pb2.DagRunEvent]:
        try:
            actor = await self._actor(context)
            async for run, changed in self._gw.watch_run(
                actor, request.run.dag_id, request.run.run_id, self._watch_interval
            ):
                yield gateway_pb2.DagRunEvent(run=_run(run), task_instances=[_ti(t) for t in changed])
        except GatewayError as e:
            await _abort(context, e)

    async def GetTaskLog(
        self, request: gateway_pb2.GetTaskLogRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.GetTaskLogResponse:
        k = request.key
        try:
            chunk = await self._gw.task_log(
                await self._actor(context), k.dag_id, k.run_id, k.task_id, k.try_number or None, request.from_offset,
                key_map_index(k),
            )  # fmt: skip
        except GatewayError as e:
            await _abort(context, e)
        return _log(chunk)

    async def FollowTaskLog(
        self, request: gateway_pb2.GetTaskLogRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[gateway_pb2.GetTaskLogResponse]:
        k = request.key
        try:
            follow = await self._gw.follow_log(
                await self._actor(context), k.dag_id, k.run_id, k.task_id, k.try_number or None, request.from_offset,
                key_map_index(k),
            )  # fmt: skip
        except GatewayError as e:
            await _abort(context, e)
        try:
            async for chunk in follow.chunks(idle=None):
                if chunk is not None:
                    yield _log(chunk)
        except GatewayError as e:  # the logs service failed the stream after it began
            await _abort(context, e)
        finally:
            follow.close()  # also when the client left: the logs service stops following

    async def ListXComs(
        self, request: gateway_pb2.ListXComsRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ListXComsResponse:
        try:
            xcoms = await self._gw.xcoms(
                await self._actor(context), request.run.dag_id, request.run.run_id, request.task_id,
                request.map_index if request.HasField("map_index") else None,  # absent: every instance's
            )  # fmt: skip
        except GatewayError as e:
            await _abort(context, e)
        return gateway_pb2.ListXComsResponse(
            xcoms=[
                gateway_pb2.ListXComsResponse.XCom(
                    key=x.key, value_json=x.value_json, map_index=x.map_index, size=x.size, timestamp=x.timestamp or ""
                )
                for x in xcoms
            ]
        )

    async def ClearTasks(
        self, request: gateway_pb2.ClearTasksRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.TasksActedOn:
        run = request.selection.run
        try:
            task_ids = await self._gw.clear(
                await self._actor(context), run.dag_id, run.run_id, _selection(request.selection), request.only_failed
            )
        except GatewayError as e:
            await _abort(context, e)
        return gateway_pb2.TasksActedOn(task_ids=task_ids)

    async def MarkTasks(
        self, request: gateway_pb2.MarkTasksRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.TasksActedOn:
        run = request.selection.run
        try:
            task_ids = await self._gw.mark(
                await self._actor(context), run.dag_id, run.run_id, _selection(request.selection), request.state
            )
        except GatewayError as e:
            await _abort(context, e)
        return gateway_pb2.TasksActedOn(task_ids=task_ids)

"""SpinnerApi: the public gRPC API, over the same engine as the REST API."""

from __future__ import annotations

import json
from typing import NoReturn

import grpc

from gateway.engine import Gateway, RunInfo
from gateway.errors import GatewayError, InvalidRequest
from spinner.v1 import gateway_pb2, gateway_pb2_grpc


async def _abort(context: grpc.aio.ServicerContext, e: GatewayError) -> NoReturn:
    await context.abort(e.grpc_status, str(e))
    raise AssertionError("unreachable")


def _run(r: RunInfo) -> gateway_pb2.DagRun:
    return gateway_pb2.DagRun(
        dag_id=r.dag_id, run_id=r.run_id, state=r.state, run_type=r.run_type, logical_date=r.logical_date or "",
        start_date=r.start_date or "", end_date=r.end_date or "", conf_json=json.dumps(r.conf),
    )  # fmt: skip


class SpinnerApiServicer(gateway_pb2_grpc.SpinnerApiServicer):
    def __init__(self, gateway: Gateway) -> None:
        self._gw = gateway

    async def ListDags(
        self, request: gateway_pb2.ListDagsRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ListDagsResponse:
        try:
            dags, total = await self._gw.list_dags(request.limit or 100, request.offset)
        except GatewayError as e:
            await _abort(context, e)
        return gateway_pb2.ListDagsResponse(
            dags=[
                gateway_pb2.Dag(
                    dag_id=d.dag_id,
                    partition=d.partition,
                    tier=d.tier,
                    schedule=d.schedule or "",
                    is_paused=d.is_paused,
                    owner=d.owner,
                    tags=d.tags,
                    description=d.description,
                    bundle_version=d.bundle_version,
                    fileloc=d.fileloc,
                )
                for d in dags
            ],
            total=total,
        )

    async def TriggerDag(
        self, request: gateway_pb2.TriggerDagRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.DagRun:
        try:
            try:
                conf = json.loads(request.conf_json) if request.conf_json.strip() else {}
            except ValueError as err:
                raise InvalidRequest(f"conf_json is not valid JSON: {err}") from None
            run = await self._gw.trigger(request.dag_id, conf, request.run_id or None, "grpc")
        except GatewayError as e:
            await _abort(context, e)
        return _run(run)

    async def ListDagRuns(
        self, request: gateway_pb2.ListDagRunsRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ListDagRunsResponse:
        try:
            runs = await self._gw.list_runs(request.dag_id, request.limit or 25)
        except GatewayError as e:
            await _abort(context, e)
        return gateway_pb2.ListDagRunsResponse(runs=[_run(r) for r in runs])

    async def ListTaskInstances(
        self, request: gateway_pb2.ListTaskInstancesRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ListTaskInstancesResponse:
        try:
            tis = await self._gw.task_instances(request.run.dag_id, request.run.run_id)
        except GatewayError as e:
            await _abort(context, e)
        return gateway_pb2.ListTaskInstancesResponse(
            task_instances=[
                gateway_pb2.TaskInstance(
                    dag_id=t.dag_id,
                    run_id=t.run_id,
                    task_id=t.task_id,
                    state=t.state or "",
                    try_number=t.try_number,
                    max_tries=t.max_tries,
                    start_date=t.start_date or "",
                    end_date=t.end_date or "",
                )
                for t in tis
            ]
        )

    async def GetTaskLog(
        self, request: gateway_pb2.GetTaskLogRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.GetTaskLogResponse:
        k = request.key
        try:
            chunk = await self._gw.task_log(k.dag_id, k.run_id, k.task_id, k.try_number or None, request.from_offset)
        except GatewayError as e:
            await _abort(context, e)
        return gateway_pb2.GetTaskLogResponse(
            lines=chunk.lines, next_offset=chunk.next_offset, source=chunk.source, complete=chunk.complete
        )

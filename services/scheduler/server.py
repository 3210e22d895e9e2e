"""SchedulerService: decode, call the partition scheduler, map domain errors to status codes."""

from __future__ import annotations

from typing import Any

import grpc
from opentelemetry import trace

from services.scheduler.engine.actions import Selection
from services.scheduler.engine.leases import LeaseLost
from services.scheduler.engine.loop import PartitionScheduler
from services.scheduler.engine.scheduling import DagNotFound, InvalidTrigger, RunExists, TriggerError
from spinner.telemetry import attached, current_traceparent, extract_metadata
from spinner.v1 import common_pb2, scheduler_pb2, scheduler_pb2_grpc

_CODES: dict[type[Exception], grpc.StatusCode] = {
    DagNotFound: grpc.StatusCode.NOT_FOUND,
    InvalidTrigger: grpc.StatusCode.INVALID_ARGUMENT,
    RunExists: grpc.StatusCode.ALREADY_EXISTS,
    LeaseLost: grpc.StatusCode.UNAVAILABLE,
}


class SchedulerServicer(scheduler_pb2_grpc.SchedulerServiceServicer):
    def __init__(self, scheduler: PartitionScheduler, tracer: trace.Tracer) -> None:
        self._scheduler = scheduler
        self._tracer = tracer

    async def TriggerDagRun(
        self, request: scheduler_pb2.TriggerDagRunRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.TriggerDagRunResponse:
        if not request.dag_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "dag_id is required")
        with (
            attached(extract_metadata(context.invocation_metadata())),
            self._tracer.start_as_current_span("scheduler.trigger_dag_run", attributes={"dag_id": request.dag_id}),
        ):
            try:
                run = await self._scheduler.trigger(
                    dag_id=request.dag_id,
                    conf_json=request.conf_json,
                    run_id=request.run_id,
                    logical_date=request.logical_date,
                    triggered_by=request.triggered_by,
                    trace_context=current_traceparent(),
                )
            except (TriggerError, LeaseLost) as e:
                await context.abort(_CODES.get(type(e), grpc.StatusCode.FAILED_PRECONDITION), str(e))
        return scheduler_pb2.TriggerDagRunResponse(
            run=common_pb2.DagRunRef(dag_id=run.dag_id, run_id=run.run_id),
            state=run.state,
            logical_date=run.logical_date.isoformat(),
        )

    async def _act(self, context: grpc.aio.ServicerContext, name: str, action: Any) -> Any:
        with (
            attached(extract_metadata(context.invocation_metadata())),
            self._tracer.start_as_current_span(f"scheduler.{name}"),
        ):
            try:
                return await self._scheduler.act(action)
            except (TriggerError, LeaseLost) as e:
                await context.abort(_CODES.get(type(e), grpc.StatusCode.FAILED_PRECONDITION), str(e))
                raise

    async def ClearTaskInstances(
        self, request: scheduler_pb2.ClearTaskInstancesRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.ClearTaskInstancesResponse:
        sel = _selection(request.selection)
        actions = self._scheduler.actions
        cleared = await self._act(context, "clear", lambda s: actions.clear(s, sel, request.only_failed))
        return scheduler_pb2.ClearTaskInstancesResponse(task_ids=cleared)

    async def MarkTaskInstances(
        self, request: scheduler_pb2.MarkTaskInstancesRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.MarkTaskInstancesResponse:
        sel = _selection(request.selection)
        actions = self._scheduler.actions
        marked = await self._act(context, "mark", lambda s: actions.mark(s, sel, request.state))
        return scheduler_pb2.MarkTaskInstancesResponse(task_ids=marked)

    async def SetPaused(
        self, request: scheduler_pb2.SetPausedRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.SetPausedResponse:
        actions = self._scheduler.actions
        paused = await self._act(context, "set_paused", lambda s: actions.set_paused(s, request.dag_id, request.paused))
        return scheduler_pb2.SetPausedResponse(paused=paused)

    async def Backfill(
        self, request: scheduler_pb2.BackfillRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.BackfillResponse:
        actions = self._scheduler.actions
        created, skipped = await self._act(
            context,
            "backfill",
            lambda s: actions.backfill(
                s, request.dag_id, request.start, request.end, request.conf_json, request.requested_by
            ),
        )
        return scheduler_pb2.BackfillResponse(
            runs=[common_pb2.DagRunRef(dag_id=request.dag_id, run_id=r) for r in created], skipped_existing=skipped
        )

    async def Wake(
        self, request: scheduler_pb2.WakeRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.WakeResponse:
        self._scheduler.waker.wake()
        return scheduler_pb2.WakeResponse()

    async def GetStatus(
        self, request: scheduler_pb2.GetSchedulerStatusRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.SchedulerStatus:
        status = await self._scheduler.status()
        return scheduler_pb2.SchedulerStatus(
            partition=status.partition,
            lease_epoch=status.epoch,
            leader=status.leader,
            dag_count=status.dag_count,
            import_error_count=status.import_error_count,
            bundle_version=status.bundle_version,
        )


def _selection(pb: scheduler_pb2.TaskSelection) -> Selection:
    return Selection(
        dag_id=pb.run.dag_id,
        run_id=pb.run.run_id,
        task_ids=list(pb.task_ids),
        include_upstream=pb.include_upstream,
        include_downstream=pb.include_downstream,
        map_indexes=list(pb.map_indexes),
    )

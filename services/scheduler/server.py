"""SchedulerService: decode, call the partition scheduler, map domain errors to status codes."""

from __future__ import annotations

import grpc
from opentelemetry import trace

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

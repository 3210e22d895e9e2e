"""ExecutorService (for schedulers) and RunnerService (for task runners): thin gRPC layers."""

from __future__ import annotations

import asyncio

import grpc
from opentelemetry import trace

from services.executor.backends.base import TryKey
from services.executor.engine import (
    BadToken,
    Executor,
    ExecutorError,
    InvalidRequest,
    NotConfigured,
    NotQueued,
    Outcome,
    ShuttingDown,
    StaleLease,
)
from spinner.telemetry import attached, context_from_traceparent, extract_metadata
from spinner.v1 import common_pb2, executor_pb2, executor_pb2_grpc

_CODES: dict[type[ExecutorError], grpc.StatusCode] = {
    NotQueued: grpc.StatusCode.FAILED_PRECONDITION,
    BadToken: grpc.StatusCode.PERMISSION_DENIED,
    StaleLease: grpc.StatusCode.FAILED_PRECONDITION,
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    ShuttingDown: grpc.StatusCode.UNAVAILABLE,
    NotConfigured: grpc.StatusCode.FAILED_PRECONDITION,
}


def _key(pb: common_pb2.TaskTryKey) -> TryKey:
    return TryKey(pb.dag_id, pb.run_id, pb.task_id, pb.try_number)


async def _abort(context: grpc.aio.ServicerContext, e: ExecutorError) -> None:
    await context.abort(_CODES.get(type(e), grpc.StatusCode.FAILED_PRECONDITION), str(e))


class ExecutorServicer(executor_pb2_grpc.ExecutorServiceServicer):
    def __init__(self, executor: Executor, tracer: trace.Tracer) -> None:
        self._executor = executor
        self._tracer = tracer

    async def _submit(self, request: executor_pb2.SubmitRequest) -> bool:
        from services.executor.engine import SubmitInfo

        key = _key(request.key)
        with self._tracer.start_as_current_span(
            "executor.submit",
            attributes={"dag_id": key.dag_id, "task_id": key.task_id, "try_number": key.try_number},
        ):
            return await self._executor.submit(
                SubmitInfo(
                    key=key,
                    partition=request.partition,
                    bundle_version=request.bundle_version,
                    relative_fileloc=request.relative_fileloc,
                    lease_epoch=request.lease_epoch,
                    execution_timeout=request.execution_timeout,
                    executor_config_json=request.executor_config_json,
                )
            )

    async def Submit(
        self, request: executor_pb2.SubmitRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.SubmitResponse:
        with attached(extract_metadata(context.invocation_metadata())):
            try:
                launched = await self._submit(request)
            except ExecutorError as e:
                await _abort(context, e)
                raise
        return executor_pb2.SubmitResponse(launched=launched)

    async def SubmitMany(
        self, request: executor_pb2.SubmitManyRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.SubmitManyResponse:
        async def one(item: executor_pb2.SubmitRequest) -> executor_pb2.SubmitResult:
            with attached(context_from_traceparent(item.traceparent)):
                try:
                    return executor_pb2.SubmitResult(launched=await self._submit(item))
                except ExecutorError as e:
                    code = _CODES.get(type(e), grpc.StatusCode.FAILED_PRECONDITION)
                    return executor_pb2.SubmitResult(code=code.value[0], error=str(e))

        results = await asyncio.gather(*(one(item) for item in request.tries))
        return executor_pb2.SubmitManyResponse(results=results)

    async def RunCallback(
        self, request: executor_pb2.RunCallbackRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.RunCallbackResponse:
        try:
            launched = await self._executor.callbacks.run(request.callback_id, request.partition, request.lease_epoch)
        except ExecutorError as e:
            await _abort(context, e)
            raise
        return executor_pb2.RunCallbackResponse(launched=launched)

    async def GetStatus(
        self, request: executor_pb2.GetExecutorStatusRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.ExecutorStatus:
        backend = self._executor.backend
        return executor_pb2.ExecutorStatus(
            running=len(backend.running()) if backend else 0, backend=backend.name if backend else ""
        )


_OUTCOMES = {
    executor_pb2.TASK_OUTCOME_SUCCESS: Outcome(success=True),
    executor_pb2.TASK_OUTCOME_FAILED: Outcome(),
    executor_pb2.TASK_OUTCOME_FAILED_NO_RETRY: Outcome(no_retry=True),
    executor_pb2.TASK_OUTCOME_SKIPPED: Outcome(skipped=True),
}


class RunnerServicer(executor_pb2_grpc.RunnerServiceServicer):
    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    async def Start(
        self, request: executor_pb2.RunnerStartRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.RunnerStartResponse:
        try:
            ctx = await self._executor.start(_key(request.key), request.token, request.hostname, request.pid)
        except ExecutorError as e:
            await _abort(context, e)
            raise
        return executor_pb2.RunnerStartResponse(
            logical_date=ctx.logical_date,
            data_interval_start=ctx.data_interval_start,
            data_interval_end=ctx.data_interval_end,
            conf_json=ctx.conf_json,
            run_type=ctx.run_type,
        )

    async def Heartbeat(
        self, request: executor_pb2.RunnerHeartbeatRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.RunnerHeartbeatResponse:
        try:
            keep = await self._executor.heartbeat(_key(request.key), request.token)
        except ExecutorError as e:
            await _abort(context, e)
            raise
        return executor_pb2.RunnerHeartbeatResponse(keep_running=keep)

    async def Finish(
        self, request: executor_pb2.RunnerFinishRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.RunnerFinishResponse:
        outcome = _OUTCOMES.get(request.outcome)
        if outcome is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "outcome is required")
            raise AssertionError("unreachable")
        try:
            state = await self._executor.finish(_key(request.key), request.token, outcome, request.error)
        except ExecutorError as e:
            await _abort(context, e)
            raise
        return executor_pb2.RunnerFinishResponse(state=state)

    async def SendNotification(
        self, request: executor_pb2.SendNotificationRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.SendNotificationResponse:
        from services.executor.notifications import Email

        email = Email(
            to=tuple(request.to), subject=request.subject, html_content=request.html_content,
            cc=tuple(request.cc), bcc=tuple(request.bcc),
        )  # fmt: skip
        try:
            message_id = await self._executor.callbacks.send_email(_key(request.key), request.token, email)
        except ExecutorError as e:
            await _abort(context, e)
            raise
        return executor_pb2.SendNotificationResponse(message_id=message_id)

    async def FinishCallback(
        self, request: executor_pb2.FinishCallbackRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.FinishCallbackResponse:
        try:
            state = await self._executor.callbacks.finish(
                _key(request.key), request.token, request.success, request.error
            )
        except ExecutorError as e:
            await _abort(context, e)
            raise
        return executor_pb2.FinishCallbackResponse(state=state)

"""ExecutorService (for schedulers) and RunnerService (for task runners): thin gRPC layers."""

from __future__ import annotations

import asyncio
import datetime as dt

import grpc
from opentelemetry import trace

from services.executor import queries
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
from services.executor.triggers import TriggerFailed, TriggerRequest
from services.executor.varconn import NoKey, RunnerSecrets, Undecryptable
from spinner.mapping import key_map_index
from spinner.telemetry import attached, context_from_traceparent, extract_metadata
from spinner.v1 import common_pb2, executor_pb2, executor_pb2_grpc

_CODES: dict[type[ExecutorError], grpc.StatusCode] = {
    NotQueued: grpc.StatusCode.FAILED_PRECONDITION,
    BadToken: grpc.StatusCode.PERMISSION_DENIED,
    StaleLease: grpc.StatusCode.FAILED_PRECONDITION,
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    ShuttingDown: grpc.StatusCode.UNAVAILABLE,
    NoKey: grpc.StatusCode.FAILED_PRECONDITION,
    Undecryptable: grpc.StatusCode.FAILED_PRECONDITION,
    NotConfigured: grpc.StatusCode.FAILED_PRECONDITION,
}


def _key(pb: common_pb2.TaskTryKey) -> TryKey:
    """The try a request names; an absent map_index is an unmapped task's -1 (spinner.mapping.key_map_index)."""
    return TryKey(pb.dag_id, pb.run_id, pb.task_id, pb.try_number, map_index=key_map_index(pb))


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
            attributes={
                "dag_id": key.dag_id,
                "task_id": key.task_id,
                "try_number": key.try_number,
                "map_index": key.map_index,
            },
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
    def __init__(self, executor: Executor, secrets: RunnerSecrets | None = None) -> None:
        self._executor = executor
        self._secrets = secrets

    async def Start(
        self, request: executor_pb2.RunnerStartRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.RunnerStartResponse:
        try:
            ctx = await self._executor.start(_key(request.key), request.token, request.hostname, request.pid)
            prev = await self._executor.previous_success(_key(request.key), request.token)
        except ExecutorError as e:
            await _abort(context, e)
            raise
        return executor_pb2.RunnerStartResponse(
            logical_date=ctx.logical_date,
            data_interval_start=ctx.data_interval_start,
            data_interval_end=ctx.data_interval_end,
            conf_json=ctx.conf_json,
            run_type=ctx.run_type,
            prev_logical_date_success=prev.logical_date,
            prev_data_interval_start_success=prev.data_interval_start,
            prev_data_interval_end_success=prev.data_interval_end,
            prev_start_date_success=prev.start_date,
            prev_end_date_success=prev.end_date,
        )

    async def SetRenderedFields(
        self, request: executor_pb2.RunnerSetRenderedFieldsRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.RunnerSetRenderedFieldsResponse:
        try:
            await self._executor.set_rendered_fields(_key(request.key), request.token, request.fields_json)
        except ExecutorError as e:
            await _abort(context, e)
            raise
        return executor_pb2.RunnerSetRenderedFieldsResponse()

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
        if request.outcome == executor_pb2.TASK_OUTCOME_RESCHEDULE:
            when = _when(request.reschedule_at)
            if when is None:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "a RESCHEDULE outcome needs reschedule_at, an ISO 8601 time"
                )
                raise AssertionError("unreachable")
            outcome = Outcome(reschedule_at=when)
        if outcome is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "outcome is required")
            raise AssertionError("unreachable")
        try:
            runner = (request.hostname, request.pid) if request.hostname else None  # absent: an older runner
            state = await self._executor.finish(
                _key(request.key), request.token, outcome, request.error, request.skip_task_ids, runner
            )
        except ExecutorError as e:
            await _abort(context, e)
            raise
        return executor_pb2.RunnerFinishResponse(state=state)

    async def PushXCom(
        self, request: executor_pb2.RunnerPushXComRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.RunnerPushXComResponse:
        try:
            await self._executor.push_xcom(_key(request.key), request.token, request.xcom_key, request.value_json)
        except ExecutorError as e:
            await _abort(context, e)
            raise
        return executor_pb2.RunnerPushXComResponse()

    async def PullXCom(
        self, request: executor_pb2.RunnerPullXComRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.RunnerPullXComResponse:
        try:
            items = await self._executor.pull_xcom(
                _key(request.key), request.token, request.dag_id, list(request.task_ids), request.xcom_key,
                request.include_prior_dates,
            )  # fmt: skip
        except ExecutorError as e:
            await _abort(context, e)
            raise
        return executor_pb2.RunnerPullXComResponse(
            items=[
                executor_pb2.RunnerPullXComResponse.Item(
                    task_id=i.task_id, found=i.found, value_json=i.value_json, run_id=i.run_id, map_index=i.map_index
                )
                for i in items
            ]
        )

    async def TriggerDagRun(
        self, request: executor_pb2.RunnerTriggerDagRunRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.RunnerTriggerDagRunResponse:
        if not request.trigger_dag_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "trigger_dag_id is required")
        ask = TriggerRequest(
            dag_id=request.trigger_dag_id, conf_json=request.conf_json, logical_date=request.logical_date,
            run_id=request.trigger_run_id, reset_dag_run=request.reset_dag_run,
        )  # fmt: skip
        try:
            run = await self._executor.trigger_dag_run(_key(request.key), request.token, ask)
        except ExecutorError as e:
            await _abort(context, e)
            raise
        except TriggerFailed as e:
            await context.abort(e.code, str(e))
            raise
        return executor_pb2.RunnerTriggerDagRunResponse(
            run_id=run.run_id, logical_date=run.logical_date, state=run.state, created=run.created
        )

    async def GetDagRun(
        self, request: executor_pb2.RunnerGetDagRunRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.RunnerGetDagRunResponse:
        try:
            state, logical_date = await self._executor.get_dag_run(
                _key(request.key), request.token, request.dag_id, request.run_id
            )
        except ExecutorError as e:
            await _abort(context, e)
            raise
        except TriggerFailed as e:
            await context.abort(e.code, str(e))
            raise
        return executor_pb2.RunnerGetDagRunResponse(state=state, logical_date=logical_date)

    # --- variables and connections (services/executor/varconn.py) -------------------------

    def _secrets_or_none(self) -> RunnerSecrets:
        if self._secrets is None:
            raise NoKey("this executor serves no variables or connections")
        return self._secrets

    async def GetVariable(
        self, request: executor_pb2.RunnerGetVariableRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.RunnerGetVariableResponse:
        try:
            value = await self._secrets_or_none().variable(_key(request.key), request.token, request.variable_key)
        except ExecutorError as e:
            await _abort(context, e)
            raise
        if value is None:
            return executor_pb2.RunnerGetVariableResponse(found=False)
        return executor_pb2.RunnerGetVariableResponse(found=True, value=value)

    async def GetConnection(
        self, request: executor_pb2.RunnerGetConnectionRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.RunnerGetConnectionResponse:
        try:
            conn = await self._secrets_or_none().connection(_key(request.key), request.token, request.conn_id)
        except ExecutorError as e:
            await _abort(context, e)
            raise
        if conn is None:
            return executor_pb2.RunnerGetConnectionResponse(found=False)
        return executor_pb2.RunnerGetConnectionResponse(
            found=True, conn_type=conn.conn_type, host=conn.host, schema=conn.schema, login=conn.login,
            password=conn.password, port=conn.port, extra=conn.extra, description=conn.description,
        )  # fmt: skip

    async def GetTaskState(
        self, request: executor_pb2.RunnerGetTaskStateRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.RunnerGetTaskStateResponse:
        when = _when(request.logical_date)
        if when is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "logical_date must be an ISO 8601 time")
            raise AssertionError("unreachable")
        ask = queries.StateRequest(dag_id=request.dag_id, logical_date=when, task_id=request.task_id)
        try:
            answer = await self._executor.task_state(_key(request.key), request.token, ask)
        except ExecutorError as e:
            await _abort(context, e)
            raise
        return executor_pb2.RunnerGetTaskStateResponse(found=answer.found, state=answer.state, run_id=answer.run_id)

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


def _when(value: str) -> dt.datetime | None:
    """An ISO 8601 time (UTC when it names no zone), or None when it is not one."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)

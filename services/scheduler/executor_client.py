"""The production Submitter: ExecutorService.Submit over gRPC, carrying the trace context."""

from __future__ import annotations

import json

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.scheduler.engine.scheduling import QueuedTask
from spinner.telemetry import inject_metadata
from spinner.v1 import common_pb2, executor_pb2, executor_pb2_grpc


class GrpcSubmitter:
    # In a burst a Submit waits behind the executor's other reports; a timeout only causes a useless resubmit.
    def __init__(self, channel: grpc.aio.Channel, *, timeout: float = 60.0) -> None:
        self._stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        self._health = health_pb2_grpc.HealthStub(channel)
        self._timeout = timeout

    async def submit(self, task: QueuedTask, partition: str, epoch: int) -> None:
        await self._stub.Submit(_request(task, partition, epoch), timeout=self._timeout, metadata=inject_metadata())

    async def reachable(self) -> bool:
        """Whether the executor answers its health check as serving, within a couple of seconds."""
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=2)
        except Exception:  # any failure (refused, timed out, a channel closing at shutdown) is "not now"
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def run_callback(self, callback_id: int, partition: str, epoch: int) -> bool:
        """ExecutorService.RunCallback: launch a recorded DAG callback (engine/callbacks.py)."""
        request = executor_pb2.RunCallbackRequest(callback_id=callback_id, partition=partition, lease_epoch=epoch)
        reply = await self._stub.RunCallback(request, timeout=30)
        return bool(reply.launched)

    async def submit_many(self, tasks: list[tuple[QueuedTask, str]], partition: str, epoch: int) -> list[str | None]:
        """(try, traceparent) pairs in one call; for each, None when accepted, else why not."""
        reply = await self._stub.SubmitMany(
            executor_pb2.SubmitManyRequest(
                tries=[_request(task, partition, epoch, traceparent) for task, traceparent in tasks]
            ),
            timeout=self._timeout,
        )
        return [None if r.code == 0 else (r.error or f"status {r.code}") for r in reply.results]


def _request(task: QueuedTask, partition: str, epoch: int, traceparent: str = "") -> executor_pb2.SubmitRequest:
    return executor_pb2.SubmitRequest(
        # map_index always set, -1 too: the executor never has to guess which instance is meant.
        key=common_pb2.TaskTryKey(
            dag_id=task.dag_id,
            run_id=task.run_id,
            task_id=task.task_id,
            try_number=task.try_number,
            map_index=task.map_index,
        ),
        partition=partition,
        bundle_version=task.bundle_version,
        relative_fileloc=task.relative_fileloc,
        lease_epoch=epoch,
        execution_timeout=task.execution_timeout,
        executor_config_json=json.dumps(task.executor_config, sort_keys=True),
        traceparent=traceparent,
    )

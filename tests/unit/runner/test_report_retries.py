"""A runner's report survives an executor that drops it: transient codes are retried, refusals are not.

A real gRPC server on a free port stands in for the executor's RunnerService: it answers the first
Finish with a transient code (CANCELLED is what a stopping executor's server gives calls in flight)
and the next one with the state. Before CANCELLED was retried, the runner gave up on its report
and the try was recorded from the process's end instead of its outcome."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from spinner.runner.client import RunnerClient
from spinner.v1 import common_pb2, executor_pb2, executor_pb2_grpc


class FlakyRunnerService(executor_pb2_grpc.RunnerServiceServicer):
    def __init__(self) -> None:
        self.first_code = grpc.StatusCode.CANCELLED
        self.calls = 0

    def Finish(self, request: executor_pb2.RunnerFinishRequest, context: grpc.ServicerContext) -> object:
        self.calls += 1
        if self.calls == 1:
            context.abort(self.first_code, "the executor is stopping")
        return executor_pb2.RunnerFinishResponse(state="success")


@pytest.fixture
def service() -> Iterator[tuple[FlakyRunnerService, str]]:
    servicer = FlakyRunnerService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    executor_pb2_grpc.add_RunnerServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def finish(address: str) -> str:
    key = common_pb2.TaskTryKey(dag_id="d", run_id="r", task_id="t", try_number=1)
    client = RunnerClient(address, key, "token")
    try:
        request = executor_pb2.RunnerFinishRequest(key=key, token="token", outcome=executor_pb2.TASK_OUTCOME_SUCCESS)
        return str(client.call(client.stub.Finish, request, "reporting the end").state)
    finally:
        client.close()


@pytest.mark.parametrize("code", [grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE])
def test_a_report_dropped_by_a_stopping_executor_is_sent_again(
    service: tuple[FlakyRunnerService, str], code: grpc.StatusCode, capsys: pytest.CaptureFixture[str]
) -> None:
    servicer, address = service
    servicer.first_code = code
    assert finish(address) == "success", capsys.readouterr().out
    assert servicer.calls == 2
    assert "retrying" in capsys.readouterr().out  # the task's log says why the report took longer


def test_a_refused_report_is_not_sent_again(service: tuple[FlakyRunnerService, str]) -> None:
    servicer, address = service
    servicer.first_code = grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as refused:
        finish(address)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert servicer.calls == 1

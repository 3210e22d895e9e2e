"""The public gRPC API serves the same answers as REST, with gRPC status codes for errors."""

from __future__ import annotations

import grpc
import pytest

from gateway.server import SpinnerApiServicer
from spinner.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc

from .conftest import Site, add_user


class _Bearer(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Adds the token to every call's metadata, as a client program would."""

    def __init__(self, token: str) -> None:
        self._metadata = (("authorization", f"Bearer {token}"),)

    async def intercept_unary_unary(self, continuation, details, request):
        details = details._replace(metadata=tuple(details.metadata or ()) + self._metadata)
        return await continuation(details, request)


async def test_list_dags_runs_and_errors_over_grpc(site: Site) -> None:
    token = await add_user(site.sessions, "grpc-user", ["spinner-users"])
    server = grpc.aio.server()
    gateway_pb2_grpc.add_SpinnerApiServicer_to_server(SpinnerApiServicer(site.gateway, site.auth), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=[_Bearer(token)]) as ch:
            stub = gateway_pb2_grpc.SpinnerApiStub(ch)
            dags = await stub.ListDags(gateway_pb2.ListDagsRequest(limit=10))
            assert [d.dag_id for d in dags.dags] == ["dag_0", "dag_1", "dag_2"] and dags.total == 3
            runs = await stub.ListDagRuns(gateway_pb2.ListDagRunsRequest(dag_id="dag_0"))
            assert [r.run_id for r in runs.runs] == ["manual__1"]
            tis = await stub.ListTaskInstances(
                gateway_pb2.ListTaskInstancesRequest(run=common_pb2.DagRunRef(dag_id="dag_0", run_id="manual__1"))
            )
            assert {t.task_id: t.state for t in tis.task_instances} == {"extract": "success", "load": "failed"}
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await stub.ListDagRuns(gateway_pb2.ListDagRunsRequest(dag_id="nope"))
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
            with pytest.raises(grpc.aio.AioRpcError) as bad:
                await stub.TriggerDag(gateway_pb2.TriggerDagRequest(dag_id="dag_0", conf_json="{oops"))
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await server.stop(None)

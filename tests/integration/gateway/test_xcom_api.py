"""A task instance's XComs over REST, the public gRPC API and its page, with the DAG read permission."""

from __future__ import annotations

import json

import grpc
import pytest
from sqlalchemy import select

from gateway.server import SpinnerApiServicer
from spinner.db.models import AuditLog, DagRun, XCom
from spinner.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc

from .conftest import NOW, Site, add_user
from .test_gateway_grpc import _Bearer

PATH = "/api/v1/dags/dag_0/runs/manual__1/tasks/extract/xcom"


async def _push(site: Site, key: str, value: object, task_id: str = "extract") -> None:
    async with site.sessions() as s, s.begin():
        run = (await s.execute(select(DagRun).where(DagRun.dag_id == "dag_0"))).scalar_one()
        s.add(XCom(dag_run_id=run.id, task_id=task_id, key=key, dag_id="dag_0", run_id="manual__1",
                   value=json.dumps(value), timestamp=NOW))  # fmt: skip


async def test_rest_lists_the_xcoms_of_a_task_instance(site: Site) -> None:
    await _push(site, "return_value", {"rows": 3, "tables": ["a", "b"]})
    await _push(site, "extra", [1, 2])
    await _push(site, "return_value", "other task", task_id="load")
    r = await site.client.get(PATH)
    assert r.status_code == 200
    assert r.json() == {
        "xcoms": [
            {"key": "extra", "value": [1, 2], "map_index": -1, "size": 6, "timestamp": NOW.isoformat()},
            {"key": "return_value", "value": {"rows": 3, "tables": ["a", "b"]}, "map_index": -1, "size": 33,
             "timestamp": NOW.isoformat()},
        ]
    }  # fmt: skip
    none = await site.client.get("/api/v1/dags/dag_0/runs/manual__1/tasks/load/xcom")
    assert [x["value"] for x in none.json()["xcoms"]] == ["other task"]
    page = await site.client.get("/dags/dag_0/runs/manual__1/tasks/extract/log")
    assert page.status_code == 200 and '<table id="xcoms">' in page.text
    assert "&#34;tables&#34;" in page.text and "<code>extra</code>" in page.text


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/v1/dags/nope/runs/manual__1/tasks/extract/xcom", "DAG 'nope' not found"),
        ("/api/v1/dags/dag_0/runs/missing/tasks/extract/xcom", "run 'missing' of DAG 'dag_0' not found"),
        ("/api/v1/dags/dag_0/runs/manual__1/tasks/nope/xcom", "task 'nope' of run 'manual__1' of DAG 'dag_0'"),
    ],
)
async def test_unknown_things_are_404(site: Site, path: str, message: str) -> None:
    r = await site.client.get(path)
    assert r.status_code == 404 and message in r.json()["error"]["message"]


async def test_without_read_permission_it_is_404_and_audited(site: Site) -> None:
    await _push(site, "return_value", "secret-ish")
    nobody = await site.user("nobody", [])
    r = await nobody.get(PATH)
    assert r.status_code == 404 and "DAG 'dag_0' not found" in r.json()["error"]["message"]
    assert "secret-ish" not in r.text
    async with site.sessions() as s:
        rows = (await s.execute(select(AuditLog).where(AuditLog.action == "xcom.read"))).scalars().all()
    assert [(a.username, a.dag_id, a.run_id, a.task_id, a.outcome) for a in rows] == [
        ("nobody", "dag_0", "manual__1", "extract", "denied")
    ]
    assert (await site.client_for(None).get(PATH)).status_code == 401


async def test_grpc_lists_xcoms_and_refuses_with_status_codes(site: Site) -> None:
    await _push(site, "return_value", {"n": 1})
    token = await add_user(site.sessions, "grpc-user", ["spinner-users"])
    nobody = await add_user(site.sessions, "grpc-nobody", [])
    server = grpc.aio.server()
    gateway_pb2_grpc.add_SpinnerApiServicer_to_server(SpinnerApiServicer(site.gateway, site.auth), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    run = common_pb2.DagRunRef(dag_id="dag_0", run_id="manual__1")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=[_Bearer(token)]) as ch:
            stub = gateway_pb2_grpc.SpinnerApiStub(ch)
            reply = await stub.ListXComs(gateway_pb2.ListXComsRequest(run=run, task_id="extract"))
            assert [(x.key, json.loads(x.value_json), x.map_index, x.size) for x in reply.xcoms] == [
                ("return_value", {"n": 1}, -1, 8)
            ]
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await stub.ListXComs(gateway_pb2.ListXComsRequest(run=run, task_id="nope"))
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=[_Bearer(nobody)]) as ch:
            stub = gateway_pb2_grpc.SpinnerApiStub(ch)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.ListXComs(gateway_pb2.ListXComsRequest(run=run, task_id="extract"))
            assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            with pytest.raises(grpc.aio.AioRpcError) as anonymous:
                await gateway_pb2_grpc.SpinnerApiStub(ch).ListXComs(gateway_pb2.ListXComsRequest(run=run))
            assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await server.stop(None)

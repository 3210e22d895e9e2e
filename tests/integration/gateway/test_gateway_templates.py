"""Rendered fields, a DAG's time zone and params over REST, gRPC and the web UI, with the DAG's read permission."""

from __future__ import annotations

import json

import grpc
import pytest

from gateway.server import SpinnerApiServicer
from spinner import DAG, BashOperator, Param
from spinner.db.models import RenderedTaskInstanceFields, SerializedDagModel
from spinner.sdk.serialization import dag_hash, serialize_dag
from spinner.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc

from .conftest import NOW, Site, add_user
from .test_gateway_grpc import _Bearer

BASE = "/api/v1/dags/dag_0/runs/manual__1/tasks/extract"


async def seed_templates(site: Site) -> None:
    with DAG(
        "dag_0",
        tier=1,
        schedule=None,
        timezone="Europe/Paris",
        params={
            "days": Param(7, type="integer", minimum=1, description="Days back"),
            "region": Param(enum=["eu", "us"]),
        },
    ) as dag:
        BashOperator(task_id="extract", bash_command="echo {{ params.days }}")
    data = serialize_dag(dag)
    async with site.sessions() as s, s.begin():
        s.add(SerializedDagModel(dag_id="dag_0", partition="spinner_tier_1_0", fileloc="spinner_tier_1_0/t/d0.py", data=data,
                                 dag_hash=dag_hash(data), updated_at=NOW))  # fmt: skip
        for try_number, days in ((1, 7), (2, 8)):
            s.add(
                RenderedTaskInstanceFields(
                    dag_id="dag_0", run_id="manual__1", task_id="extract", try_number=try_number,
                    rendered_fields=json.dumps({"bash_command": f"echo {days}", "env": None}), rendered_at=NOW,
                )
            )  # fmt: skip


async def test_rendered_fields_over_rest_per_try_and_latest(site: Site) -> None:
    await seed_templates(site)
    latest = await site.client.get(f"{BASE}/rendered")
    assert latest.status_code == 200, latest.text
    assert latest.json() == {
        "dag_id": "dag_0", "run_id": "manual__1", "task_id": "extract", "map_index": -1, "try_number": 2,
        "rendered_fields": {"bash_command": "echo 8", "env": None}, "rendered_at": NOW.isoformat(),
    }  # fmt: skip
    first = await site.client.get(f"{BASE}/rendered", params={"try_number": 1})
    assert first.json()["rendered_fields"]["bash_command"] == "echo 7"
    missing = await site.client.get(f"{BASE}/rendered", params={"try_number": 3})
    assert missing.status_code == 404 and "try 3" in missing.json()["error"]["message"]
    bad = await site.client.get(f"{BASE}/rendered", params={"try_number": "x"})
    assert bad.status_code == 400
    nobody = await site.user("nobody", [])
    hidden = await nobody.get(f"{BASE}/rendered")
    assert hidden.status_code == 404 and "rendered" not in hidden.text


async def test_dag_description_has_timezone_and_params(site: Site) -> None:
    await seed_templates(site)
    dag = (await site.client.get("/api/v1/dags/dag_0")).json()
    assert dag["timezone"] == "Europe/Paris"
    assert dag["params"] == [
        {"name": "days", "has_default": True, "default": 7, "description": "Days back",
         "schema": {"type": "integer", "minimum": 1, "description": "Days back"}},
        {"name": "region", "has_default": False, "default": None, "description": None, "schema": {"enum": ["eu", "us"]}},
    ]  # fmt: skip
    assert (await site.client.get("/api/v1/dags/dag_1")).json()["timezone"] == "UTC"  # no serialized DAG yet


async def test_rendered_fields_and_dag_description_over_grpc(site: Site) -> None:
    await seed_templates(site)
    token = await add_user(site.sessions, "grpc-user", ["spinner-users"])
    nobody = await add_user(site.sessions, "grpc-nobody", [])
    server = grpc.aio.server()
    gateway_pb2_grpc.add_SpinnerApiServicer_to_server(SpinnerApiServicer(site.gateway, site.auth), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    key = common_pb2.TaskTryKey(dag_id="dag_0", run_id="manual__1", task_id="extract")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=[_Bearer(token)]) as ch:
            stub = gateway_pb2_grpc.SpinnerApiStub(ch)
            got = await stub.GetRenderedFields(gateway_pb2.GetRenderedFieldsRequest(key=key))
            assert got.key.try_number == 2 and json.loads(got.fields_json)["bash_command"] == "echo 8"
            key.try_number = 1
            got = await stub.GetRenderedFields(gateway_pb2.GetRenderedFieldsRequest(key=key))
            assert json.loads(got.fields_json)["bash_command"] == "echo 7"
            dag = await stub.GetDag(gateway_pb2.GetDagRequest(dag_id="dag_0"))
            assert dag.timezone == "Europe/Paris"
            assert [(p.name, p.has_default, json.loads(p.default_json)) for p in dag.params] == [
                ("days", True, 7), ("region", False, None),
            ]  # fmt: skip
            assert json.loads(dag.params[0].schema_json)["minimum"] == 1
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=[_Bearer(nobody)]) as ch:
            stub = gateway_pb2_grpc.SpinnerApiStub(ch)
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await stub.GetRenderedFields(gateway_pb2.GetRenderedFieldsRequest(key=key))
            assert e.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await server.stop(None)


async def test_pages_show_rendered_fields_timezone_and_a_trigger_form(site: Site) -> None:
    await seed_templates(site)
    page = await site.client.get("/dags/dag_0/runs/manual__1/tasks/extract/rendered", params={"try_number": 1})
    assert page.status_code == 200, page.text
    assert 'id="field-bash_command">echo 7</pre>' in page.text
    log = await site.client.get("/dags/dag_0/runs/manual__1/tasks/extract/log")
    assert 'id="rendered-link"' in log.text
    dag = await site.client.get("/dags/dag_0")
    assert 'id="timezone">Europe/Paris' in dag.text
    assert 'name="param.j.days"' in dag.text and 'min="1"' in dag.text and 'value="7"' in dag.text
    assert 'name="param.s.region"' in dag.text and "(required)" in dag.text
    none = await site.client.get("/dags/dag_0/runs/manual__1/tasks/load/rendered")
    assert none.status_code == 200 and 'id="rendered-missing"' in none.text
    nobody = await site.user("nobody", [])
    assert (await nobody.get("/dags/dag_0/runs/manual__1/tasks/extract/rendered")).status_code == 404


def test_trigger_form_fields_become_conf() -> None:
    from gateway.errors import InvalidRequest
    from gateway.templates_pages import conf_from_form, form_field

    assert form_field({"name": "n", "schema": {"type": "integer"}}) == "param.j.n"
    assert form_field({"name": "r", "schema": {"enum": ["eu", "us"]}}) == "param.s.r"
    assert conf_from_form({"csrf_token": "x", "param.j.n": "3", "param.s.r": "eu", "param.j.empty": ""}) == {
        "n": 3, "r": "eu",
    }  # fmt: skip
    with pytest.raises(InvalidRequest, match="param 'n'"):
        conf_from_form({"param.j.n": "three"})


def test_trigger_form_fields_follow_each_params_schema() -> None:
    from gateway.templates_pages import trigger_fields

    fields = trigger_fields(
        [
            {"name": "greeting", "has_default": True, "default": "hello", "schema": {}, "description": None},
            {"name": "n", "has_default": True, "default": 3, "schema": {"type": "integer", "maximum": 9},
             "description": "how many"},
            {"name": "dry", "has_default": True, "default": False, "schema": {"type": "boolean"}, "description": None},
            {"name": "level", "has_default": False, "default": None, "schema": {"enum": [1, 2]}, "description": None},
        ]
    )  # fmt: skip
    assert [(f.name, f.kind, f.value, f.required) for f in fields] == [
        ("param.s.greeting", "text", "hello", False),
        ("param.j.n", "number", "3", False),
        ("param.j.dry", "select", "false", False),
        ("param.j.level", "select", "", True),
    ]
    assert fields[1].maximum == 9 and fields[1].step == "1" and fields[3].options == [("1", "1"), ("2", "2")]

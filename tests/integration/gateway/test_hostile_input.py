"""Input meant to break the gateway is a clear 400 (INVALID_ARGUMENT over gRPC), never a 500 for the next reader."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import grpc
import pytest

from gateway.server import SpinnerApiServicer
from spinner.db.models import AuditLog, DagRun
from spinner.v1 import gateway_pb2, gateway_pb2_grpc

from .conftest import NOW, Site, add_user
from .test_gateway_grpc import _Bearer


@pytest.fixture
async def api(site: Site) -> AsyncIterator[gateway_pb2_grpc.SpinnerApiStub]:
    """The public gRPC API of the site's gateway, as its admin."""
    token = await add_user(site.sessions, "grpc-admin", ["Admin"])
    server = grpc.aio.server()
    gateway_pb2_grpc.add_SpinnerApiServicer_to_server(SpinnerApiServicer(site.gateway, site.auth), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=[_Bearer(token)]) as channel:
            yield gateway_pb2_grpc.SpinnerApiStub(channel)
    finally:
        await server.stop(None)


NOT_FINITE = ["NaN", "Infinity", "-Infinity", "1e999"]


@pytest.mark.parametrize("value", NOT_FINITE)
async def test_a_conf_with_nan_or_infinity_is_400_and_stores_nothing(site: Site, value: str) -> None:
    r = await site.client.post("/api/v1/dags/dag_0/runs", content=f'{{"conf": {{"x": {value}}}}}'.encode())
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_request"
    assert "no NaN or Infinity" in r.json()["error"]["message"]
    runs = await site.client.get("/api/v1/dags/dag_0/runs")
    assert runs.status_code == 200 and [x["run_id"] for x in runs.json()["runs"]] == ["manual__1"]
    audit = await site.client.get("/api/v1/audit")
    assert audit.status_code == 200 and all(e["action"] != "trigger" for e in audit.json()["entries"])


@pytest.mark.parametrize("value", NOT_FINITE)
async def test_a_conf_with_nan_or_infinity_is_invalid_argument_over_grpc(
    site: Site, api: gateway_pb2_grpc.SpinnerApiStub, value: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await api.TriggerDag(gateway_pb2.TriggerDagRequest(dag_id="dag_0", conf_json=f'{{"x": {value}}}'))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "no NaN or Infinity" in (refused.value.details() or "")
    runs = await api.ListDagRuns(gateway_pb2.ListDagRunsRequest(dag_id="dag_0"))
    assert [x.run_id for x in runs.runs] == ["manual__1"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # MariaDB's JSON columns refuse NaN: none to read back
async def test_a_nan_already_stored_does_not_break_the_lists(site: Site, api: gateway_pb2_grpc.SpinnerApiStub) -> None:
    """Stored before the check existed (SQLite keeps NaN in a JSON column): shown as null, the lists still answer."""
    async with site.sessions() as s, s.begin():
        s.add(
            DagRun(
                dag_id="dag_0", run_id="manual__nan", run_type="manual", state="success", logical_date=NOW + dt.timedelta(days=1),
                conf={"x": float("nan"), "y": [float("inf")]}, partition="spinner_tier_1_0",
                created_at=NOW + dt.timedelta(seconds=1),
            )
        )  # fmt: skip
        s.add(
            AuditLog(
                ts=NOW, username="admin", action="trigger", outcome="ok", remote_addr="", details={"x": float("nan")}
            )
        )
    runs = await site.client.get("/api/v1/dags/dag_0/runs")
    assert runs.status_code == 200
    assert {x["run_id"]: x["conf"] for x in runs.json()["runs"]}["manual__nan"] == {"x": None, "y": [None]}
    audit = await site.client.get("/api/v1/audit", params={"action": "trigger"})
    assert audit.status_code == 200 and audit.json()["entries"][0]["details"] == {"x": None}
    assert (await site.client.get("/audit")).status_code == 200
    grpc_runs = await api.ListDagRuns(gateway_pb2.ListDagRunsRequest(dag_id="dag_0"))
    assert {x.run_id: x.conf_json for x in grpc_runs.runs}["manual__nan"] == '{"x": null, "y": [null]}'


DEEP = "[" * 2000 + "]" * 2000


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/auth/token", DEEP),  # anonymous: no token needed to reach the parser
        ("/api/v1/auth/token", "[" * 2000),
        ("/api/v1/dags/dag_0/runs", '{"conf": {"x": ' + "[" * 100 + "]" * 100 + "}}"),
    ],
)
async def test_deeply_nested_json_is_400(site: Site, path: str, body: str) -> None:
    r = await site.client_for(None if "auth" in path else site.client.headers["authorization"][7:]).post(
        path, content=body.encode()
    )
    assert r.status_code == 400
    assert "nested more than 30 levels deep" in r.json()["error"]["message"]
    runs = await site.client.get("/api/v1/dags/dag_0/runs")
    assert [x["run_id"] for x in runs.json()["runs"]] == ["manual__1"]


async def test_a_conf_nested_to_the_limit_goes_through_and_is_audited(site: Site) -> None:
    """29 levels in the conf, 30 in the body: past the checks, to "no scheduler" here; its audit entry is stored."""
    r = await site.client.post("/api/v1/dags/dag_0/runs", json={"conf": {"x": _nested(28)}})
    assert r.status_code == 503
    audit = await site.client.get("/api/v1/audit", params={"action": "trigger"})
    assert audit.status_code == 200 and audit.json()["entries"][0]["details"]["conf"] == {"x": _nested(28)}


def _nested(levels: int) -> list[object]:
    value: list[object] = []
    for _ in range(levels - 1):
        value = [value]
    return value


async def test_deeply_nested_conf_json_is_invalid_argument_over_grpc(
    site: Site, api: gateway_pb2_grpc.SpinnerApiStub
) -> None:
    for conf_json in ('{"x": ' + DEEP + "}", "[" * 2000):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await api.TriggerDag(gateway_pb2.TriggerDagRequest(dag_id="dag_0", conf_json=conf_json))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "nested more than 30 levels deep" in (refused.value.details() or "")


async def test_a_huge_body_is_refused_before_it_is_read_whole(site: Site) -> None:
    """50 MB sent in 64 KiB chunks without a Content-Length: the gateway stops reading past 1 MiB."""
    sent = 0

    async def fifty_megabytes() -> AsyncIterator[bytes]:
        nonlocal sent
        chunk = b" " * 65536
        for _ in range(50 * 16):
            sent += len(chunk)
            yield chunk

    for path in ("/api/v1/auth/token", "/login"):
        sent = 0
        r = await site.client_for(None).post(path, content=fifty_megabytes())
        assert r.status_code == 400
        assert "larger than 1 MiB" in r.text
        assert sent <= 2 * 1024 * 1024, f"{path} read {sent} bytes"
    r = await site.client.post("/api/v1/dags/dag_0/runs", content=b"{}", headers={"content-length": "52428800"})
    assert r.status_code == 400 and "larger than 1 MiB" in r.json()["error"]["message"]


@pytest.mark.parametrize("last_event_id", ["9" * 5000, "9" * 11, "1000000001"])
async def test_a_huge_last_event_id_is_400(site: Site, last_event_id: str) -> None:
    site.write_log("dag_0", "manual__1", "extract", 1, "one\ntwo\n", done=True)
    r = await site.client.get(
        "/api/v1/dags/dag_0/runs/manual__1/tasks/extract/logs/stream", headers={"last-event-id": last_event_id}
    )
    assert r.status_code == 400
    assert "Last-Event-ID header must be a line offset from 0 to 1000000000" in r.json()["error"]["message"]


@pytest.mark.parametrize("slots", [10**20, 2**31, -1])
async def test_pool_slots_out_of_range_are_400_and_nothing_changes(site: Site, slots: int) -> None:
    r = await site.client.put("/api/v1/pools/big", json={"slots": slots})
    assert r.status_code == 400
    assert "slots must be a whole number from 0 to 2147483647" in r.json()["error"]["message"]
    assert "big" not in [p["name"] for p in (await site.client.get("/api/v1/pools")).json()["pools"]]
    r = await site.client.put("/api/v1/pools/big", json={"slots": 2**31 - 1})
    assert r.status_code == 200 and r.json()["slots"] == 2**31 - 1


async def test_a_query_integer_of_thousands_of_digits_is_400_without_echoing_it(site: Site) -> None:
    r = await site.client.get("/api/v1/dags", params={"limit": "9" * 5000})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "query parameter limit is out of range"


BAD_RUN_IDS = ["--help", "-x", "run\x1b[31m", "a\u202eb", "a\x00b", "a b", "a/b", "é", "x" * 251, "_leading"]


@pytest.mark.parametrize("run_id", BAD_RUN_IDS)
async def test_a_run_id_outside_the_documented_pattern_is_400(site: Site, run_id: str) -> None:
    r = await site.client.post("/api/v1/dags/dag_0/runs", json={"run_id": run_id})
    assert r.status_code == 400
    assert "run_id must start with a letter or digit" in r.json()["error"]["message"]


async def test_run_ids_like_the_schedulers_own_pass_the_check(site: Site) -> None:
    for run_id in ("manual__2026-06-01T12:00:00.123456+00:00", "scheduled__2026-06-01T00:00:00+00:00", "x" * 250):
        r = await site.client.post("/api/v1/dags/dag_0/runs", json={"run_id": run_id})
        assert r.status_code == 503, r.text  # past every check, to "no scheduler" in this test


async def test_a_bad_run_id_is_invalid_argument_over_grpc(site: Site, api: gateway_pb2_grpc.SpinnerApiStub) -> None:
    for run_id in ("--help", "a\x00b", "a\u202eb"):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await api.TriggerDag(gateway_pb2.TriggerDagRequest(dag_id="dag_0", run_id=run_id))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "run_id must start with a letter or digit" in (refused.value.details() or "")

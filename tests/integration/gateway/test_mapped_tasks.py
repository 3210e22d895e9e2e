"""Mapped tasks through the gateway (docs/adr/0007-dynamic-task-mapping.md): every task instance says its
map_index over REST, gRPC and the pages; one instance's log, XCom, rendered fields and tries are asked for by
map_index; a map_index that names no instance is a clear 4xx; the grid shows a mapped task as one row with
its count and summed-up state; clear and mark pass map_indexes to the owning scheduler, audited.

The mapped instances are written to the database directly, as the scheduler's expansion leaves them. The
log and scheduler ends are doubles of their gRPC services that answer per instance and record what the
gateway asked, so what the gateway sends over each contract is what is checked here.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.app import create_app
from gateway.engine import Gateway
from gateway.mapped import spans
from gateway.server import SpinnerApiServicer
from gateway.views import MappedSummary, TaskInstanceInfo
from spinner import DAG, BashOperator
from spinner.db.models import (
    AuditLog,
    DagRun,
    RenderedTaskInstanceFields,
    SerializedDagModel,
    TaskInstance,
    TaskInstanceHistory,
    XCom,
)
from spinner.mapping import key_map_index
from spinner.sdk.serialization import dag_hash, serialize_dag
from spinner.v1 import (
    common_pb2,
    gateway_pb2,
    gateway_pb2_grpc,
    logs_pb2,
    logs_pb2_grpc,
    scheduler_pb2,
    scheduler_pb2_grpc,
)

from .conftest import NOW, Site, add_lease, add_user
from .test_gateway_grpc import _Bearer


class _BearerStreams(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """The token on streaming calls too (WatchDagRun, FollowTaskLog)."""

    def __init__(self, token: str) -> None:
        self._metadata = (("authorization", f"Bearer {token}"),)

    async def intercept_unary_stream(self, continuation, details, request):
        return await continuation(details._replace(metadata=tuple(details.metadata or ()) + self._metadata), request)


RUN = "/api/v1/dags/dag_0/runs/manual__1"
TASK = f"{RUN}/tasks/files"
PAGE = "/dags/dag_0/runs/manual__1/tasks/files"
# files: four instances, one failed after a retry, one still running; later: mapped, not expanded yet.
INSTANCES = [(0, "success", 1), (1, "failed", 2), (2, "running", 1), (3, "success", 1)]


async def seed_mapped(sessions: async_sessionmaker[AsyncSession]) -> None:
    with DAG("dag_0", tier=1, schedule=None) as dag:
        extract = BashOperator(task_id="extract", bash_command="echo hi")
        files = BashOperator.partial(task_id="files").expand(bash_command=[f"echo {i}" for i in range(4)])
        later = BashOperator.partial(task_id="later").expand(bash_command=["echo a", "echo b"])
        extract >> files >> later
        BashOperator(task_id="load", bash_command="echo load")
    data = serialize_dag(dag)
    started = NOW - dt.timedelta(minutes=5)
    async with sessions() as s, s.begin():
        s.add(SerializedDagModel(dag_id="dag_0", partition="spinner_tier_1_0", fileloc="spinner_tier_1_0/t/d0.py",
                                 data=data, dag_hash=dag_hash(data), updated_at=NOW))  # fmt: skip
        for map_index, state, try_number in INSTANCES:
            s.add(
                TaskInstance(
                    dag_id="dag_0", run_id="manual__1", task_id="files", map_index=map_index,
                    partition="spinner_tier_1_0", state=state, try_number=try_number, max_tries=1,
                    operator="BashOperator", start_date=started + dt.timedelta(seconds=map_index),
                    end_date=None if state == "running" else NOW, duration=None if state == "running" else 30.0,
                )
            )  # fmt: skip
        s.add(TaskInstanceHistory(dag_id="dag_0", run_id="manual__1", task_id="files", map_index=1, try_number=1,
                                  state="failed", start_date=started, end_date=started, error="exit 1"))  # fmt: skip
        s.add(TaskInstance(dag_id="dag_0", run_id="manual__1", task_id="later", partition="spinner_tier_1_0",
                           operator="BashOperator"))  # fmt: skip
        run = (await s.execute(select(DagRun).where(DagRun.dag_id == "dag_0"))).scalar_one()
        for map_index, value in ((0, "a.csv"), (1, "b.csv"), (3, "d.csv")):
            s.add(XCom(dag_run_id=run.id, task_id="files", map_index=map_index, key="return_value", dag_id="dag_0",
                       run_id="manual__1", value=json.dumps(value), timestamp=NOW))  # fmt: skip
        for map_index, try_number in ((0, 1), (1, 1), (1, 2)):
            s.add(
                RenderedTaskInstanceFields(
                    dag_id="dag_0", run_id="manual__1", task_id="files", map_index=map_index, try_number=try_number,
                    rendered_fields=json.dumps({"bash_command": f"echo {map_index} (try {try_number})"}),
                    rendered_at=NOW,
                )
            )  # fmt: skip


class InstanceLogs(logs_pb2_grpc.LogsServiceServicer):
    """The logs service's contract: each try's log says which instance and try it is. Records each key."""

    def __init__(self) -> None:
        self.keys: list[common_pb2.TaskTryKey] = []

    def _chunk(self, key: common_pb2.TaskTryKey) -> logs_pb2.ReadLogResponse:
        self.keys.append(key)
        text = f"{key.task_id}[{key_map_index(key)}] try {key.try_number}"
        line = logs_pb2.LogLine(offset=0, text=text, section="task")
        return logs_pb2.ReadLogResponse(lines=[line], next_offset=1, source="local", complete=True)

    async def Read(self, request: logs_pb2.ReadLogRequest, context: grpc.aio.ServicerContext) -> Any:
        return self._chunk(request.key)

    async def Follow(self, request: logs_pb2.FollowLogRequest, context: grpc.aio.ServicerContext) -> Any:
        yield self._chunk(request.key)


class RecordingScheduler(scheduler_pb2_grpc.SchedulerServiceServicer):
    """The owning scheduler's contract for clear and mark: records each selection, acts on its task ids."""

    def __init__(self) -> None:
        self.selections: list[tuple[str, scheduler_pb2.TaskSelection]] = []

    async def ClearTaskInstances(
        self, request: scheduler_pb2.ClearTaskInstancesRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.ClearTaskInstancesResponse:
        self.selections.append(("clear", request.selection))
        return scheduler_pb2.ClearTaskInstancesResponse(task_ids=request.selection.task_ids)

    async def MarkTaskInstances(
        self, request: scheduler_pb2.MarkTaskInstancesRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.MarkTaskInstancesResponse:
        self.selections.append((f"mark_{request.state}", request.selection))
        return scheduler_pb2.MarkTaskInstancesResponse(task_ids=request.selection.task_ids)


@dataclass
class Doubles:
    client: httpx.AsyncClient  # admin, to a gateway whose logs service and scheduler are the doubles
    api: gateway_pb2_grpc.SpinnerApiStub  # its public gRPC API, as a user who may read and edit every DAG
    logs: InstanceLogs
    scheduler: RecordingScheduler
    site: Site
    channels: list[grpc.aio.Channel] = field(default_factory=list)


@pytest.fixture
async def doubles(site: Site) -> AsyncIterator[Doubles]:
    await seed_mapped(site.sessions)
    logs, scheduler = InstanceLogs(), RecordingScheduler()
    services = grpc.aio.server()
    logs_pb2_grpc.add_LogsServiceServicer_to_server(logs, services)
    scheduler_pb2_grpc.add_SchedulerServiceServicer_to_server(scheduler, services)
    port = services.add_insecure_port("127.0.0.1:0")
    await services.start()
    await add_lease(site.sessions, NOW + dt.timedelta(minutes=1), f"127.0.0.1:{port}")
    logs_channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    gw = Gateway(sessions=site.sessions, logs_channel=logs_channel, clock=lambda: NOW,
                 tracer=TracerProvider().get_tracer("t"), rpc_timeout=5)  # fmt: skip
    api_server = grpc.aio.server()
    gateway_pb2_grpc.add_SpinnerApiServicer_to_server(SpinnerApiServicer(gw, site.auth), api_server)
    api_port = api_server.add_insecure_port("127.0.0.1:0")
    await api_server.start()
    editor = await add_user(site.sessions, "editor", ["Admin"])
    api_channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{api_port}", interceptors=[_Bearer(editor), _BearerStreams(editor)]
    )
    transport = httpx.ASGITransport(app=create_app(gw, site.auth, clock=lambda: NOW))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", headers=site.client.headers) as c:
            yield Doubles(c, gateway_pb2_grpc.SpinnerApiStub(api_channel), logs, scheduler, site)
    finally:
        await api_channel.close()
        await api_server.stop(None)
        await gw.aclose()
        await logs_channel.close()
        await services.stop(None)


async def _audit(site: Site, action: str) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    async with site.sessions() as s:
        rows = (await s.execute(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id))).scalars()
        return [(a.username, a.outcome, a.task_id, dict(a.details or {})) for a in rows]


# --- every task instance says its map_index --------------------------------------------------------


async def test_rest_lists_every_instance_of_a_mapped_task_with_its_map_index(site: Site) -> None:
    await seed_mapped(site.sessions)
    tis = (await site.client.get(f"{RUN}/tasks")).json()["task_instances"]
    assert [(t["task_id"], t["map_index"], t["state"], t["try_number"]) for t in tis] == [
        ("extract", -1, "success", 1),
        *[("files", i, state, try_number) for i, state, try_number in INSTANCES],
        ("later", -1, None, 0),
        ("load", -1, "failed", 1),
    ]


async def test_grpc_lists_and_watches_task_instances_with_their_map_index(doubles: Doubles) -> None:
    run = common_pb2.DagRunRef(dag_id="dag_0", run_id="manual__1")
    listed = await doubles.api.ListTaskInstances(gateway_pb2.ListTaskInstancesRequest(run=run))
    assert [(t.task_id, t.map_index) for t in listed.task_instances] == [
        ("extract", -1), ("files", 0), ("files", 1), ("files", 2), ("files", 3), ("later", -1), ("load", -1),
    ]  # fmt: skip
    # The run has ended: the watch sends its one first event, with every instance, and ends.
    events = [e async for e in doubles.api.WatchDagRun(gateway_pb2.WatchDagRunRequest(run=run))]
    assert len(events) == 1 and events[0].run.state == "success"
    assert {(t.task_id, t.map_index): t.state for t in events[0].task_instances if t.task_id == "files"} == {
        ("files", i): state for i, state, _ in INSTANCES
    }


async def test_watch_reports_each_instance_as_a_mapped_task_expands(site: Site) -> None:
    async with site.sessions() as s, s.begin():
        run = (await s.execute(select(DagRun).where(DagRun.dag_id == "dag_0"))).scalar_one()
        run.state = "running"
        s.add(TaskInstance(dag_id="dag_0", run_id="manual__1", task_id="fan", partition="spinner_tier_1_0"))
    watch = site.gateway.watch_run(await _admin(site), "dag_0", "manual__1", interval=0.05)
    first = await anext(watch)
    assert ("fan", -1) in {(t.task_id, t.map_index) for t in first[1]}
    async with site.sessions() as s, s.begin():  # the expansion: -1 becomes 0, and 1 is added
        (await s.get(TaskInstance, ("dag_0", "manual__1", "fan", -1))).map_index = 0  # type: ignore[union-attr]
        s.add(TaskInstance(dag_id="dag_0", run_id="manual__1", task_id="fan", map_index=1, partition="x",
                           state="scheduled"))  # fmt: skip
    _, changed = await anext(watch)
    assert sorted((t.task_id, t.map_index) for t in changed) == [("fan", 0), ("fan", 1)]
    await watch.aclose()


async def _admin(site: Site) -> Any:
    from gateway.auth import Actor

    token = await add_user(site.sessions, "watcher", ["Admin"])
    return Actor(await site.auth.token_principal(token), "127.0.0.1")


# --- one instance's log, XCom, rendered fields and tries, by map_index ------------------------------


async def test_a_mapped_instance_s_log_by_map_index_over_rest_and_grpc(doubles: Doubles) -> None:
    r = await doubles.client.get(f"{TASK}/logs", params={"map_index": 1})
    assert r.status_code == 200, r.text
    assert r.json()["lines"] == ["files[1] try 2"] and r.json()["try_number"] == 2  # that instance's latest try
    first = await doubles.client.get(f"{TASK}/logs", params={"map_index": 1, "try_number": 1})
    assert first.json()["lines"] == ["files[1] try 1"]
    key = common_pb2.TaskTryKey(dag_id="dag_0", run_id="manual__1", task_id="files", map_index=3)
    reply = await doubles.api.GetTaskLog(gateway_pb2.GetTaskLogRequest(key=key))
    assert list(reply.lines) == ["files[3] try 1"] and reply.try_number == 1
    followed = [c async for c in doubles.api.FollowTaskLog(gateway_pb2.GetTaskLogRequest(key=key))]
    assert [list(c.lines) for c in followed] == [["files[3] try 1"]]
    # An unmapped task's key names -1, as before: the logs service reads the task's one instance.
    plain = await doubles.client.get(f"{RUN}/tasks/extract/logs")
    assert plain.json()["lines"] == ["extract[-1] try 1"]
    assert [key_map_index(k) for k in doubles.logs.keys] == [1, 1, 3, 3, -1]


async def test_a_mapped_instance_s_log_stream_by_map_index(doubles: Doubles) -> None:
    async with doubles.client.stream("GET", f"{TASK}/logs/stream", params={"map_index": 2}) as r:
        body = "".join([chunk async for chunk in r.aiter_text()])
    assert r.status_code == 200
    data = [json.loads(line[len("data: ") :]) for line in body.splitlines() if line.startswith("data: ")]
    assert [line["text"] for chunk in data for line in chunk["lines"]] == ["files[2] try 1"]


async def test_xcoms_of_every_instance_or_of_one_by_map_index(doubles: Doubles) -> None:
    every = (await doubles.client.get(f"{TASK}/xcom")).json()["xcoms"]
    assert [(x["map_index"], x["value"]) for x in every] == [(0, "a.csv"), (1, "b.csv"), (3, "d.csv")]
    one = (await doubles.client.get(f"{TASK}/xcom", params={"map_index": 1})).json()["xcoms"]
    assert [(x["map_index"], x["key"], x["value"]) for x in one] == [(1, "return_value", "b.csv")]
    assert (await doubles.client.get(f"{TASK}/xcom", params={"map_index": 2})).json() == {"xcoms": []}
    run = common_pb2.DagRunRef(dag_id="dag_0", run_id="manual__1")
    reply = await doubles.api.ListXComs(gateway_pb2.ListXComsRequest(run=run, task_id="files", map_index=3))
    assert [(x.map_index, json.loads(x.value_json)) for x in reply.xcoms] == [(3, "d.csv")]
    reply = await doubles.api.ListXComs(gateway_pb2.ListXComsRequest(run=run, task_id="files"))
    assert [x.map_index for x in reply.xcoms] == [0, 1, 3]


async def test_rendered_fields_and_tries_of_one_instance(doubles: Doubles) -> None:
    r = await doubles.client.get(f"{TASK}/rendered", params={"map_index": 1})
    assert r.status_code == 200, r.text
    assert (r.json()["map_index"], r.json()["try_number"]) == (1, 2)
    assert r.json()["rendered_fields"] == {"bash_command": "echo 1 (try 2)"}
    none = await doubles.client.get(f"{TASK}/rendered", params={"map_index": 2})
    assert none.status_code == 404 and "no rendered fields for task 'files' [2]" in none.json()["error"]["message"]
    key = common_pb2.TaskTryKey(dag_id="dag_0", run_id="manual__1", task_id="files", map_index=0)
    got = await doubles.api.GetRenderedFields(gateway_pb2.GetRenderedFieldsRequest(key=key))
    assert json.loads(got.fields_json) == {"bash_command": "echo 0 (try 1)"}
    assert (key_map_index(got.key), got.key.try_number) == (0, 1)
    tries = (await doubles.client.get(f"{TASK}/tries", params={"map_index": 1})).json()["tries"]
    assert [(t["map_index"], t["try_number"], t["state"], t["error"]) for t in tries] == [(1, 1, "failed", "exit 1")]
    assert (await doubles.client.get(f"{TASK}/tries", params={"map_index": 0})).json() == {"tries": []}


# --- a map_index that names no instance ------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        (f"{TASK}/logs", {"map_index": "abc"}, 400, "query parameter map_index must be an integer, not 'abc'"),
        (f"{TASK}/logs", {"map_index": "-2"}, 400, "map_index must be -1 (an unmapped task) or the index"),
        (f"{TASK}/logs", {"map_index": str(1 << 40)}, 400, "map_index must be -1"),
        (f"{TASK}/logs", {"map_index": "7"}, 404, "has no instance with map_index 7 (its instances: 0..3)"),
        (f"{TASK}/logs", {}, 404, "task 'files' of run 'manual__1' is mapped: it has 4 instances; name one with "
                                  "map_index (0..3)"),
        (f"{TASK}/logs/stream", {"map_index": "9"}, 404, "has no instance with map_index 9"),
        (f"{RUN}/tasks/extract/logs", {"map_index": "2"}, 404, "task 'extract' of run 'manual__1' has no instance "
                                                               "with map_index 2: it is not mapped"),
        (f"{RUN}/tasks/later/logs", {"map_index": "0"}, 404, "has no instance with map_index 0: it is not mapped, or "
                                                             "not expanded yet (leave map_index out)"),
        (f"{TASK}/xcom", {"map_index": "9"}, 404, "has no instance with map_index 9"),
        (f"{TASK}/xcom", {"map_index": "x"}, 400, "map_index must be an integer"),
        (f"{TASK}/rendered", {"map_index": "9"}, 404, "has no instance with map_index 9"),
        (f"{TASK}/rendered", {}, 404, "is mapped: it has 4 instances"),
        (f"{TASK}/tries", {"map_index": "9"}, 404, "has no instance with map_index 9"),
        (f"{RUN}/tasks/nope/logs", {"map_index": "1"}, 404, "task 'nope' of run 'manual__1' of DAG 'dag_0' not found"),
    ],
)  # fmt: skip
async def test_a_map_index_that_names_no_instance_is_a_clear_4xx(
    doubles: Doubles, path: str, params: dict[str, str], status: int, message: str
) -> None:
    r = await doubles.client.get(path, params=params)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]["message"]
    assert doubles.logs.keys == []  # refused before the logs service was asked


async def test_grpc_refuses_a_map_index_that_names_no_instance(doubles: Doubles) -> None:
    for map_index, code in ((9, grpc.StatusCode.NOT_FOUND), (-5, grpc.StatusCode.INVALID_ARGUMENT)):
        key = common_pb2.TaskTryKey(dag_id="dag_0", run_id="manual__1", task_id="files", map_index=map_index)
        for call in (
            doubles.api.GetTaskLog(gateway_pb2.GetTaskLogRequest(key=key)),
            doubles.api.GetRenderedFields(gateway_pb2.GetRenderedFieldsRequest(key=key)),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await call
            assert e.value.code() == code and "map_index" in (e.value.details() or "")
    run = common_pb2.DagRunRef(dag_id="dag_0", run_id="manual__1")
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await doubles.api.ListXComs(gateway_pb2.ListXComsRequest(run=run, task_id="files", map_index=4))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND and "its instances: 0..3" in (e.value.details() or "")


async def test_without_read_permission_a_mapped_instance_is_not_found_and_the_xcom_read_audited(
    doubles: Doubles,
) -> None:
    nobody = await doubles.site.user("nobody", [])
    for path in (f"{TASK}/logs?map_index=1", f"{TASK}/xcom?map_index=1", f"{TASK}/rendered?map_index=1",
                 f"{TASK}/tries?map_index=1", f"{PAGE}/log?map_index=1", f"{PAGE}/log"):  # fmt: skip
        r = await nobody.get(path)
        assert r.status_code == 404 and "b.csv" not in r.text, path
    assert await _audit(doubles.site, "xcom.read") == [("nobody", "denied", "files", {"map_index": 1})]


# --- clear and mark with map_indexes ----------------------------------------------------------------


async def test_clear_and_mark_pass_map_indexes_to_the_scheduler_and_are_audited(doubles: Doubles) -> None:
    r = await doubles.client.post(f"{RUN}/clear", json={"task_ids": ["files"], "map_indexes": [3, 1, 1]})
    assert r.status_code == 200, r.text
    r = await doubles.client.post(f"{RUN}/mark", json={"task_ids": ["files"], "map_indexes": [2], "state": "failed"})
    assert r.status_code == 200, r.text
    r = await doubles.client.post(f"{RUN}/clear", json={"task_ids": ["files"]})  # every instance
    assert r.status_code == 200, r.text
    selection = gateway_pb2.SelectedTasks(
        run=common_pb2.DagRunRef(dag_id="dag_0", run_id="manual__1"), task_ids=["files"], map_indexes=[0]
    )
    acted = await doubles.api.ClearTasks(gateway_pb2.ClearTasksRequest(selection=selection, only_failed=True))
    assert list(acted.task_ids) == ["files"]
    await doubles.api.MarkTasks(gateway_pb2.MarkTasksRequest(selection=selection, state="success"))
    # The page of instance 2 posts its own map_index.
    page = await doubles.client.post("/dags/dag_0/runs/manual__1/clear", data={"task_id": "files", "map_index": "2"})
    assert page.status_code == 303
    sent = [(action, list(s.task_ids), list(s.map_indexes)) for action, s in doubles.scheduler.selections]
    assert sent == [
        ("clear", ["files"], [1, 3]), ("mark_failed", ["files"], [2]), ("clear", ["files"], []),
        ("clear", ["files"], [0]), ("mark_success", ["files"], [0]), ("clear", ["files"], [2]),
    ]  # fmt: skip
    assert [(u, o, d.get("map_indexes")) for u, o, _, d in await _audit(doubles.site, "clear")] == [
        ("admin", "ok", [3, 1, 1]), ("admin", "ok", None), ("editor", "ok", [0]), ("admin", "ok", [2]),
    ]  # fmt: skip
    assert [(u, o, d["map_indexes"]) for u, o, _, d in await _audit(doubles.site, "mark_failed")] == [
        ("admin", "ok", [2])
    ]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"task_ids": ["files"], "map_indexes": ["x"]}, 400, "map_indexes must be a list of whole numbers"),
        ({"task_ids": ["files"], "map_indexes": 1}, 400, "map_indexes must be a list of whole numbers"),
        ({"task_ids": ["files"], "map_indexes": [True]}, 400, "map_indexes must be a list of whole numbers"),
        ({"task_ids": ["files"], "map_indexes": [-1]}, 400, "map_indexes are a mapped task's instances, 0 or more"),
        ({"task_ids": ["files"], "map_indexes": [1 << 40]}, 400, "map_indexes are a mapped task's instances"),
        ({"map_indexes": [1]}, 400, "map_indexes needs task_ids"),
        ({"task_ids": ["files"], "map_indexes": [1, 9]}, 404, "has no instance with map_index 9 (its instances: 0..3)"),
        ({"task_ids": ["files", "extract"], "map_indexes": [1]}, 404, "task 'extract' of run 'manual__1' has no "
                                                                      "instance with map_index 1: it is not mapped"),
        ({"task_ids": ["nope"], "map_indexes": [1]}, 404, "task 'nope' of run 'manual__1' of DAG 'dag_0' not found"),
    ],
)  # fmt: skip
async def test_a_bad_map_indexes_is_refused_audited_and_never_reaches_the_scheduler(
    doubles: Doubles, body: dict[str, Any], status: int, message: str
) -> None:
    r = await doubles.client.post(f"{RUN}/clear", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]["message"]
    ((user, outcome, _, details),) = await _audit(doubles.site, "clear")
    assert (user, outcome, details["map_indexes"]) == ("admin", "error", body["map_indexes"])
    assert message in details["error"]
    assert doubles.scheduler.selections == []


@pytest.mark.parametrize("task_ids", [[{}], [True], [[None, None]], "files", [1]])
async def test_a_malformed_selection_is_refused_and_audited_as_it_came(doubles: Doubles, task_ids: Any) -> None:
    for action, extra in (("clear", {}), ("mark", {"state": "success"})):
        r = await doubles.client.post(f"{RUN}/{action}", json={"task_ids": task_ids, **extra})
        assert r.status_code == 400 and "task_ids must be a list of task ids" in r.json()["error"]["message"]
    entries = await _audit(doubles.site, "clear") + await _audit(doubles.site, "mark_success")
    assert [(o, t, d["task_ids"]) for _, o, t, d in entries] == [("error", None, task_ids)] * 2
    assert doubles.scheduler.selections == []


async def test_a_viewer_may_not_clear_an_instance_and_the_refusal_is_audited(doubles: Doubles) -> None:
    viewer = await doubles.site.user("viewer", ["spinner-users"])
    r = await viewer.post(f"{RUN}/clear", json={"task_ids": ["files"], "map_indexes": [1]})
    assert r.status_code == 403 and "can_dag_edit" in r.json()["error"]["message"]
    assert await _audit(doubles.site, "clear") == [
        ("viewer", "denied", "files", {"task_ids": ["files"], "map_indexes": [1]})
    ]
    assert doubles.scheduler.selections == []


# --- the grid and the task page ---------------------------------------------------------------------


def _cells(page: str, task_id: str) -> list[str]:
    row = re.search(rf'<tr class="mapped-row" data-mapped="{task_id}">(.*?)</tr>', page, re.S)
    assert row is not None, f"no grid row for {task_id}"
    return re.findall(r'<td class="cell">(.*?)</td>', row.group(1), re.S)


async def test_the_grid_shows_a_mapped_task_as_one_row_with_its_count_and_summed_up_state(site: Site) -> None:
    await seed_mapped(site.sessions)
    page = (await site.client.get("/dags/dag_0")).text
    assert page.count('data-mapped="files"') == 1  # one row, not one per instance
    (cell,) = _cells(page, "files")
    assert 'data-state="failed"' in cell and 'data-count="4"' in cell and "[4]</span>" in cell
    assert 'title="files · manual__1: failed (4 instances: 2 success, 1 failed, 1 running)"' in cell
    assert f'href="{PAGE}/log"' in cell
    # The stacked bar: each state's share of the 24 px, in its colour.
    bar = re.findall(r'<rect x="([\d.]+)" width="([\d.]+)" height="5" fill="(#\w+)"/>', cell)
    assert bar == [("0.0", "12.0", "#2e9e44"), ("12.0", "6.0", "#d23c3c"), ("18.0", "6.0", "#7bd34a")]
    # Not expanded yet: its -1 row, as a plain cell of a row that says the task is mapped.
    (later,) = _cells(page, "later")
    assert 'data-state="none"' in later and "not expanded yet" in later and "data-count" not in later
    assert '<tr><td style="padding-left:4px" title="extract">extract</td>' in page  # unmapped rows as before
    assert ">files [4]</text>" in page  # the graph's node, and the Gantt bar's row, say how many


def test_the_summed_up_state_of_a_mapped_task() -> None:
    def summary(*states: str | None) -> MappedSummary:
        return MappedSummary.of([_ti(i, s) for i, s in enumerate(states)])

    assert summary("success", "failed", "running").state == "failed"
    assert summary("success", "running", "queued").state == "running"
    assert summary("success", "queued").state == "queued"
    assert summary("success", "up_for_retry").state == "up_for_retry"
    assert summary("success", "success").state == "success"
    assert summary("skipped", "skipped").state == "skipped"
    assert summary("success", "skipped").state == "success"
    assert summary("success", "skipped", "success").title == "3 instances: 2 success, 1 skipped"
    assert summary("success", None).state is None
    assert [s for s, _, _ in summary("running", "success", "success", "failed").segments(10)] == [
        "success", "failed", "running",
    ]  # fmt: skip
    assert spans([0, 1, 2, 3, 5, 7, 8]) == "0..3, 5, 7..8" and spans([4]) == "4"


def _ti(map_index: int, state: str | None) -> TaskInstanceInfo:
    return TaskInstanceInfo(
        dag_id="d", run_id="r", task_id="t", map_index=map_index, state=state, try_number=1, max_tries=0,
        operator="BashOperator", start_date=None, end_date=None, duration=None, error="",
    )  # fmt: skip


async def test_the_task_page_of_a_mapped_task_lists_its_instances(site: Site) -> None:
    await seed_mapped(site.sessions)
    r = await site.client.get(f"{PAGE}/log")
    assert r.status_code == 200, r.text
    assert "files <span" in r.text and "[4]</span>" in r.text
    assert 'id="mapped-counts">4 instances: 2 success, 1 failed, 1 running<' in r.text
    rows = re.findall(r'<tr data-map-index="(\d+)">(.*?)</tr>', r.text, re.S)
    assert [int(i) for i, _ in rows] == [0, 1, 2, 3]
    for (i, row), (_, state, try_number) in zip(rows, INSTANCES, strict=True):
        assert f">{state}</span>" in row and f"<td>{try_number} of 2</td>" in row
        assert f'href="{PAGE}/log?map_index={i}"' in row
        assert f'href="{PAGE}/log?map_index={i}#xcoms"' in row
        assert f'href="{PAGE}/rendered?map_index={i}"' in row
    assert "<td>30.0 s</td>" in rows[0][1] and "<td></td>" in rows[2][1]  # the running one has no duration yet
    assert "Clear every instance" in r.text and "Clear failed instances" in r.text
    assert '<meta http-equiv="refresh"' in r.text  # one instance is still running: the page follows it


async def test_a_mapped_instance_s_own_page(site: Site) -> None:
    await seed_mapped(site.sessions)
    r = await site.client.get(f"{PAGE}/log", params={"map_index": 1})
    assert r.status_code == 200, r.text
    assert f'<a href="{PAGE}/log" id="mapped-task"' in r.text and '<span id="map-index">[1]</span>' in r.text
    assert "try 2 of 2" in r.text and "b.csv" in r.text and "a.csv" not in r.text  # its own XCom only
    assert 'href="?map_index=1&amp;try_number=1"' in r.text  # its attempts
    assert f'id="rendered-link" href="{PAGE}/rendered?map_index=1&amp;try_number=2"' in r.text
    assert "/logs/stream?try_number=2&amp;map_index=1&amp;" in r.text and 'data-map-index="1"' in r.text
    assert '<input type="hidden" name="map_index" value="1">' in r.text and "Clear this instance" in r.text
    rendered = await site.client.get(f"{PAGE}/rendered", params={"map_index": 1})
    assert rendered.status_code == 200 and "echo 1 (try 2)" in rendered.text
    assert '<span id="map-index">[1]</span>' in rendered.text and f'href="{PAGE}/log?map_index=1"' in rendered.text
    missing = await site.client.get(f"{PAGE}/log", params={"map_index": 9})
    assert missing.status_code == 404 and "has no instance with map_index 9 (its instances: 0..3)" in missing.text
    bad = await site.client.get(f"{PAGE}/rendered", params={"map_index": "x"})
    assert bad.status_code == 400 and "map_index must be an integer" in bad.text
    # An unmapped task's page has no instance parameter anywhere.
    plain = await site.client.get("/dags/dag_0/runs/manual__1/tasks/extract/log")
    assert "map_index=" not in plain.text and 'id="map-index"' not in plain.text

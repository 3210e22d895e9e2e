"""Dynamic task mapping, the scheduler's part (docs/adr/0007-dynamic-task-mapping.md), on SQLite and MariaDB.

The real scheduler service parses real DAG files and schedules over the real database. Its
executor is a gRPC double that accepts and records every try handed to it; the test plays the
rest of the executor's part in the database, as the executor does: a try moves queued -> running
-> ended with guarded updates, and a task's XCom is written with the executor's own query. (The
executor's and runner's side of mapping is built separately; this file tests the scheduler's.)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.dagsync.engine import DagSync
from services.dagsync.in_use import versions_in_use
from services.dagsync.snapshots import SnapshotStore
from services.dagsync.sources import LocalFolderSource
from services.scheduler.__main__ import serve as serve_scheduler
from spinner.config import SchedulerSettings
from spinner.db import task_instances
from spinner.db import xcom as db_xcom
from spinner.db.models import DagModel, DagRun, TaskInstance, TaskInstanceHistory, XCom
from spinner.events import NullBus
from spinner.grpcserver import grpc_server
from spinner.telemetry import setup_telemetry
from spinner.v1 import common_pb2, executor_pb2, executor_pb2_grpc, scheduler_pb2, scheduler_pb2_grpc
from tests.service_calls import service_channel

from .conftest import PARTITION, Stack

HEADER = """
import datetime as dt
from spinner import DAG, BashOperator, EmptyOperator, Tier, TriggerRule, task
"""
Key = tuple[str, int]  # (task_id, map_index)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RecordingExecutor(executor_pb2_grpc.ExecutorServiceServicer):
    """The executor's gRPC edge: accepts every try and keeps the key it was handed."""

    def __init__(self) -> None:
        self.keys: list[common_pb2.TaskTryKey] = []

    async def SubmitMany(
        self, request: executor_pb2.SubmitManyRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.SubmitManyResponse:
        self.keys.extend(r.key for r in request.tries)
        return executor_pb2.SubmitManyResponse(
            results=[executor_pb2.SubmitResult(launched=True, code=0) for _ in request.tries]
        )

    async def Submit(
        self, request: executor_pb2.SubmitRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.SubmitResponse:
        self.keys.append(request.key)
        return executor_pb2.SubmitResponse(launched=True)

    async def RunCallback(
        self, request: executor_pb2.RunCallbackRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.RunCallbackResponse:
        return executor_pb2.RunCallbackResponse(launched=False)


@dataclass
class Scheduler:
    repo: Path
    sessions: async_sessionmaker[AsyncSession]
    sync: DagSync
    executor: RecordingExecutor
    address: str = ""
    home: Path = Path()
    runs: list[str] = field(default_factory=list)

    async def add_dag(self, dag_id: str, body: str) -> None:
        path = self.repo / PARTITION / "team" / f"{dag_id}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(HEADER + textwrap.dedent(body))
        await self.sync.sync_once()

        async def parsed() -> bool:
            async with self.sessions() as s:
                return (await s.get(DagModel, dag_id)) is not None

        await self.wait_for(parsed, 60, f"DAG {dag_id} parsed")

    async def call(self, method: str, request: Any) -> Any:
        async with service_channel(self.address, self.home / "identity") as ch:
            return await getattr(scheduler_pb2_grpc.SchedulerServiceStub(ch), method)(request, timeout=10)

    async def trigger(self, dag_id: str, run_id: str = "") -> str:
        reply = await self.call("TriggerDagRun", scheduler_pb2.TriggerDagRunRequest(dag_id=dag_id, run_id=run_id))
        return str(reply.run.run_id)

    async def rows(self, dag_id: str, run_id: str) -> dict[Key, TaskInstance]:
        async with self.sessions() as s:
            q = select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            return {(ti.task_id, ti.map_index): ti for ti in (await s.execute(q)).scalars()}

    async def states(self, dag_id: str, run_id: str) -> dict[Key, str | None]:
        return {k: ti.state for k, ti in (await self.rows(dag_id, run_id)).items()}

    async def run(self, dag_id: str, run_id: str) -> DagRun:
        async with self.sessions() as s:
            q = select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
            return (await s.execute(q)).scalar_one()

    async def wait_states(self, dag_id: str, run_id: str, want: dict[Key, str | None], timeout: float = 30) -> None:
        """Waits until each named instance is in its state."""

        async def reached() -> bool:
            states = await self.states(dag_id, run_id)
            return all(k in states and states[k] == v for k, v in want.items())

        try:
            await self.wait_for(reached, timeout, f"{want}")
        except AssertionError:
            raise AssertionError(f"waited for {want}; the run has {await self.states(dag_id, run_id)}") from None

    async def wait_run(self, dag_id: str, run_id: str, timeout: float = 30) -> DagRun:
        async def ended() -> bool:
            return (await self.run(dag_id, run_id)).state in ("success", "failed")

        await self.wait_for(ended, timeout, f"run {run_id} of {dag_id} ended")
        return await self.run(dag_id, run_id)

    async def end(
        self, dag_id: str, run_id: str, key: Key, state: str = "success", xcom: Any = None, *, push: bool = True
    ) -> None:
        """Plays the executor for one queued try: it starts, pushes its return value (unless None or
        `push` is false) and ends in `state`; then the scheduler is woken, as the executor does."""
        task_id, map_index = key
        await self.wait_states(dag_id, run_id, {key: "queued"})
        now = utcnow()
        async with self.sessions() as s, s.begin():
            ti = await s.get(TaskInstance, (dag_id, run_id, task_id, map_index))
            assert ti is not None
            ident = dict(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, try_number=ti.try_number)
            started = {"state": "running", "start_date": now, "last_heartbeat_at": now}
            assert await task_instances.guarded_update(s, **ident, expected_states=["queued"], values=started)
            if push and xcom is not None:
                await db_xcom.set_value(
                    s, dag_id=dag_id, run_id=run_id, task_id=task_id, key="return_value",
                    value_json=json.dumps(xcom), now=now, map_index=map_index,
                )  # fmt: skip
            ended = {"state": state, "end_date": now, "duration": 0.0}
            assert await task_instances.guarded_update(s, **ident, expected_states=["running"], values=ended)
        await self.call("Wake", scheduler_pb2.WakeRequest())

    async def handed_over(self, dag_id: str, run_id: str, count: int) -> list[tuple[str, int | None, int]]:
        """(task_id, map_index, try_number) of the tries of a run handed to the executor, once there are
        `count` (the hand-over runs beside the loop); map_index None when the key left it absent."""

        def keys() -> list[tuple[str, int | None, int]]:
            return [
                (k.task_id, k.map_index if k.HasField("map_index") else None, k.try_number)
                for k in self.executor.keys
                if (k.dag_id, k.run_id) == (dag_id, run_id)
            ]

        await self.wait_for(lambda: len(keys()) >= count, 10, f"{count} tries handed over")
        return keys()

    wait_for = staticmethod(Stack.wait_for)  # the one condition wait of this folder's tests


@pytest.fixture
async def sched(
    request: pytest.FixtureRequest,
    db_url: str,
    engine: object,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> AsyncIterator[Scheduler]:
    marker = request.node.get_closest_marker("scheduler_settings")
    extra = dict(marker.kwargs) if marker else {}
    repo, home = tmp_path / "repo", tmp_path / "home"
    (repo / PARTITION).mkdir(parents=True)
    shutil.copytree(Path(__file__).parents[3] / "examples" / "dags" / "plugins", repo / "plugins")
    sync = DagSync(
        LocalFolderSource(repo), SnapshotStore(home / "snapshots"), NullBus(), keep=3, clock=utcnow,
        in_use=versions_in_use(sessions),
    )  # fmt: skip
    await sync.sync_once()
    executor = RecordingExecutor()
    async with grpc_server(
        host="127.0.0.1",
        port=0,
        register=[lambda s: executor_pb2_grpc.add_ExecutorServiceServicer_to_server(executor, s)],
        service_names=[executor_pb2.DESCRIPTOR.services_by_name["ExecutorService"].full_name],
    ) as executor_server:
        # Serving, as a real executor says once started: the scheduler times no try out while its executor is not.
        await executor_server.set_serving()
        settings = SchedulerSettings(
            partition=PARTITION, port=0, executor_address=executor_server.address, home=home,
            database_url=db_url, poll_interval=0.2, **extra,
        )  # fmt: skip
        telemetry = setup_telemetry("test", settings)
        ready: list[str] = []
        stop = asyncio.Event()
        task = asyncio.create_task(serve_scheduler(settings, stop, ready=ready.append, telemetry=telemetry))
        try:
            harness = Scheduler(repo, sessions, sync, executor, home=home)
            await harness.wait_for(lambda: ready or task.done(), 20, "scheduler ready")
            assert ready, task.exception() if task.done() else "not ready"
            harness.address = ready[0]
            yield harness
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            telemetry.shutdown()


LITERAL = """
with DAG(dag_id="lit", tier=Tier.TIER1, schedule=None, max_active_tasks=2) as dag:
    m = BashOperator.partial(task_id="m", retries=1).expand(bash_command=["echo a", "echo b", "echo c"])
    after = BashOperator(task_id="after", bash_command="echo after")
    m >> after
    EmptyOperator.partial(task_id="e").expand(doc=["x", "y"])  # ended by the scheduler, no process
"""


async def test_a_literal_mapping_makes_one_instance_per_item_and_the_downstream_waits_for_them_all(
    sched: Scheduler,
) -> None:
    await sched.add_dag("lit", LITERAL)
    run_id = await sched.trigger("lit")
    # Three instances, numbered from 0; like separate tasks they wait on max_active_tasks (2).
    await sched.wait_states("lit", run_id, {("m", 0): "queued", ("m", 1): "queued", ("m", 2): "scheduled"})
    await sched.wait_states("lit", run_id, {("e", 0): "success", ("e", 1): "success"})
    rows = await sched.rows("lit", run_id)
    assert sorted(rows) == [("after", -1), ("e", 0), ("e", 1), ("m", 0), ("m", 1), ("m", 2)]  # -1 became 0
    assert rows[("after", -1)].state is None
    assert all(rows[("m", i)].max_tries == 1 for i in range(3))  # each instance has the task's retries
    # The executor is told which instance each try is.
    assert await sched.handed_over("lit", run_id, 2) == [("m", 0, 1), ("m", 1, 1)]

    await sched.end("lit", run_id, ("m", 0))
    await sched.wait_states("lit", run_id, {("m", 2): "queued"})
    await sched.end("lit", run_id, ("m", 1))
    await sched.call("Wake", scheduler_pb2.WakeRequest())
    assert (await sched.states("lit", run_id))[("after", -1)] is None  # one instance is still to end
    await sched.end("lit", run_id, ("m", 2))
    await sched.wait_states("lit", run_id, {("after", -1): "queued"})
    # Every try's key carries map_index, -1 too (set, not left absent).
    assert await sched.handed_over("lit", run_id, 4) == [("m", 0, 1), ("m", 1, 1), ("m", 2, 1), ("after", -1, 1)]
    await sched.end("lit", run_id, ("after", -1))
    assert (await sched.wait_run("lit", run_id)).state == "success"


XCOM = """
with DAG(dag_id="xmap", tier=Tier.TIER1, schedule=None, max_active_tasks=32) as dag:

    @task
    def files():
        return ["a", "b", "c"]

    @task
    def settings():
        return {"x": 1, "y": 2}

    @task
    def copy(path):
        return path

    @task
    def show(pair):
        return pair

    @task
    def move(path, mode):
        return path + mode

    @task
    def check(copied):
        return copied

    listed = files()
    copied = copy.expand(path=listed)
    show.expand(pair=settings())
    move.expand(path=listed, mode=["fast", "safe"])
    check.expand(copied=copied)
"""


async def test_mapping_over_an_upstream_list_a_dict_a_product_and_a_mapped_upstream(sched: Scheduler) -> None:
    await sched.add_dag("xmap", XCOM)
    run_id = await sched.trigger("xmap")
    await sched.wait_states("xmap", run_id, {("files", -1): "queued", ("settings", -1): "queued"})
    # Not expanded before their upstream ends: one -1 row each, waiting.
    states = await sched.states("xmap", run_id)
    assert {k: states[k] for k in states if k[0] in ("copy", "show", "move", "check")} == {
        ("copy", -1): None, ("show", -1): None, ("move", -1): None, ("check", -1): None,
    }  # fmt: skip
    await sched.end("xmap", run_id, ("files", -1), xcom=["a", "b", "c"])
    await sched.end("xmap", run_id, ("settings", -1), xcom={"x": 1, "y": 2})
    await sched.wait_states(
        "xmap", run_id,
        {("copy", 2): "queued", ("show", 1): "queued", ("move", 5): "queued", ("check", -1): None},
    )  # fmt: skip
    rows = await sched.rows("xmap", run_id)
    instances = {t: sorted(i for task_id, i in rows if task_id == t) for t in ("copy", "show", "move", "check")}
    # A list: one per item; a dict: one per pair; a list (3) and a literal (2): every combination.
    assert instances == {"copy": [0, 1, 2], "show": [0, 1], "move": [0, 1, 2, 3, 4, 5], "check": [-1]}
    # Over a mapped upstream: as many as its instances that pushed the value.
    await sched.end("xmap", run_id, ("copy", 0), xcom="a")
    await sched.end("xmap", run_id, ("copy", 1), push=False)
    await sched.end("xmap", run_id, ("copy", 2), xcom="c")
    await sched.wait_states("xmap", run_id, {("check", 0): "queued", ("check", 1): "queued"})
    assert sorted(i for task_id, i in await sched.rows("xmap", run_id) if task_id == "check") == [0, 1]


EMPTY = """
with DAG(dag_id="nothing", tier=Tier.TIER1, schedule=None) as dag:

    @task
    def files():
        return []

    @task
    def copy(path):
        return path

    copied = copy.expand(path=files())
    report = BashOperator(task_id="report", bash_command="echo report")
    cleanup = BashOperator(task_id="cleanup", bash_command="echo cleanup", trigger_rule=TriggerRule.ALL_DONE)
    copied >> [report, cleanup]
    none_given = BashOperator.partial(task_id="none_given").expand(bash_command=[])
    none_given >> BashOperator(task_id="after_none", bash_command="echo after")
"""


async def test_mapping_over_nothing_skips_the_task_and_its_downstream_follows_its_trigger_rule(
    sched: Scheduler,
) -> None:
    await sched.add_dag("nothing", EMPTY)
    run_id = await sched.trigger("nothing")
    # A literal of length 0 is known at once.
    await sched.wait_states("nothing", run_id, {("none_given", -1): "skipped", ("after_none", -1): "skipped"})
    await sched.end("nothing", run_id, ("files", -1), xcom=[])
    await sched.wait_states(
        "nothing", run_id, {("copy", -1): "skipped", ("report", -1): "skipped", ("cleanup", -1): "queued"}
    )
    rows = await sched.rows("nothing", run_id)
    assert "mapped over nothing" in rows[("copy", -1)].error, rows[("copy", -1)].error
    assert "'path' had no items" in rows[("copy", -1)].error
    assert "mapped over nothing" in rows[("none_given", -1)].error
    assert rows[("copy", -1)].try_number == 0  # no try was started
    await sched.end("nothing", run_id, ("cleanup", -1))
    assert (await sched.wait_run("nothing", run_id)).state == "success"


BAD = """
with DAG(dag_id="badmap", tier=Tier.TIER1, schedule=None) as dag:

    @task
    def number():
        return 5

    @task
    def quiet():
        pass

    @task
    def many():
        return [1, 2, 3, 4]

    @task
    def use(x):
        return x

    long = BashOperator.partial(task_id="long").expand(bash_command=["echo 1", "echo 2", "echo 3", "echo 4"])
    long >> BashOperator(task_id="after_long", bash_command="echo after")
    use.override(task_id="use_number").expand(x=number())
    use.override(task_id="use_quiet").expand(x=quiet())
    use.override(task_id="use_many").expand(x=many())
    use.override(task_id="fits").expand(x=[1, 2, 3])
"""


@pytest.mark.scheduler_settings(max_map_length=3)
async def test_too_long_and_unmappable_values_fail_the_task_with_a_message(sched: Scheduler) -> None:
    await sched.add_dag("badmap", BAD)
    run_id = await sched.trigger("badmap")
    await sched.wait_states(
        "badmap", run_id, {("long", -1): "failed", ("after_long", -1): "upstream_failed", ("fits", 2): "queued"}
    )
    await sched.end("badmap", run_id, ("number", -1), xcom=5)
    await sched.end("badmap", run_id, ("quiet", -1), push=False)
    await sched.end("badmap", run_id, ("many", -1), xcom=[1, 2, 3, 4])
    await sched.wait_states(
        "badmap", run_id, {("use_number", -1): "failed", ("use_quiet", -1): "failed", ("use_many", -1): "failed"}
    )
    rows = await sched.rows("badmap", run_id)
    errors = {t: rows[(t, -1)].error for t in ("long", "use_number", "use_quiet", "use_many")}
    assert "Task 'long' would expand to 4 task instances, more than scheduler.max_map_length (3)" in errors["long"]
    assert (
        "Task 'use_many' would expand to 4 task instances, more than scheduler.max_map_length (3)"
        in (errors["use_many"])
    )
    assert (
        "Task 'use_number' cannot be expanded: its argument 'x' maps over the XCom 'return_value' of task 'number', "
        "which is int, not a list or dict"
    ) in errors["use_number"]
    assert "of task 'quiet', which pushed no such XCom" in errors["use_quiet"], errors
    assert all(rows[(t, -1)].try_number == 0 for t in errors)  # failed without a try: no retry either
    for i in range(3):
        await sched.end("badmap", run_id, ("fits", i))
    assert (await sched.wait_run("badmap", run_id)).state == "failed"


FAILING = """
with DAG(dag_id="onefails", tier=Tier.TIER1, schedule=None) as dag:
    m = BashOperator.partial(task_id="m").expand(bash_command=["echo a", "exit 1", "echo c"])
    m >> BashOperator(task_id="after", bash_command="echo after")
    m >> BashOperator(task_id="alert", bash_command="echo alert", trigger_rule=TriggerRule.ONE_FAILED)
"""


async def test_one_failed_instance_fails_the_downstream_and_the_run_ends_when_every_instance_has(
    sched: Scheduler,
) -> None:
    await sched.add_dag("onefails", FAILING)
    run_id = await sched.trigger("onefails")
    await sched.end("onefails", run_id, ("m", 1), "failed")
    # Each instance counts: all_success fails at once, one_failed runs at once, while the others still run.
    await sched.wait_states(
        "onefails", run_id,
        {("after", -1): "upstream_failed", ("alert", -1): "queued", ("m", 0): "queued", ("m", 2): "queued"},
    )  # fmt: skip
    await sched.end("onefails", run_id, ("alert", -1))
    await sched.end("onefails", run_id, ("m", 0))
    await sched.wait_states("onefails", run_id, {("alert", -1): "success", ("m", 0): "success"})
    assert (await sched.run("onefails", run_id)).state == "running"  # instance 2 has not ended
    await sched.end("onefails", run_id, ("m", 2))
    assert (await sched.wait_run("onefails", run_id)).state == "failed"


CLEAR = """
with DAG(dag_id="clearmap", tier=Tier.TIER1, schedule=None) as dag:
    m = BashOperator.partial(task_id="m").expand(bash_command=["echo a", "echo b", "echo c"])
    m >> BashOperator(task_id="after", bash_command="echo after")
"""


def _selection(run_id: str, *task_ids: str, indexes: tuple[int, ...] = (), down: bool = False) -> Any:
    return scheduler_pb2.TaskSelection(
        run=common_pb2.DagRunRef(dag_id="clearmap", run_id=run_id), task_ids=list(task_ids),
        map_indexes=list(indexes), include_downstream=down,
    )  # fmt: skip


async def _xcoms(sched: Scheduler, run_id: str) -> dict[Key, Any]:
    async with sched.sessions() as s:
        rows = (await s.execute(select(XCom).where(XCom.run_id == run_id))).scalars().all()
    return {(r.task_id, r.map_index): json.loads(r.value) for r in rows}


async def test_clearing_and_marking_one_instance_leaves_the_others_alone(sched: Scheduler) -> None:
    await sched.add_dag("clearmap", CLEAR)
    run_id = await sched.trigger("clearmap")
    for i in range(3):
        await sched.end("clearmap", run_id, ("m", i), xcom=f"v{i}")
    await sched.end("clearmap", run_id, ("after", -1))
    assert (await sched.wait_run("clearmap", run_id)).state == "success"

    clear = scheduler_pb2.ClearTaskInstancesRequest(selection=_selection(run_id, "m", indexes=(1,)))
    assert list((await sched.call("ClearTaskInstances", clear)).task_ids) == ["m"]
    assert await _xcoms(sched, run_id) == {("m", 0): "v0", ("m", 2): "v2"}  # only the cleared instance's
    await sched.wait_states("clearmap", run_id, {("m", 1): "queued"})
    rows = await sched.rows("clearmap", run_id)
    assert sorted(rows) == [("after", -1), ("m", 0), ("m", 1), ("m", 2)]  # kept its map_index, not expanded again
    assert [(rows[("m", i)].state, rows[("m", i)].try_number) for i in range(3)] == [
        ("success", 1), ("queued", 2), ("success", 1),
    ]  # fmt: skip
    assert (await sched.handed_over("clearmap", run_id, 5))[-1] == ("m", 1, 2)
    await sched.end("clearmap", run_id, ("m", 1), xcom="again")
    assert (await sched.wait_run("clearmap", run_id)).state == "success"

    # With its downstream: the named instance, and the downstream task whole.
    clear = scheduler_pb2.ClearTaskInstancesRequest(selection=_selection(run_id, "m", indexes=(2,), down=True))
    assert sorted((await sched.call("ClearTaskInstances", clear)).task_ids) == ["after", "m"]
    await sched.wait_states("clearmap", run_id, {("m", 2): "queued", ("m", 0): "success", ("after", -1): None})
    mark = scheduler_pb2.MarkTaskInstancesRequest(selection=_selection(run_id, "m", indexes=(0,)), state="failed")
    assert list((await sched.call("MarkTaskInstances", mark)).task_ids) == ["m"]
    states = await sched.states("clearmap", run_id)
    assert (states[("m", 0)], states[("m", 1)]) == ("failed", "success")
    await sched.end("clearmap", run_id, ("m", 2))
    await sched.wait_states("clearmap", run_id, {("after", -1): "upstream_failed"})
    assert (await sched.wait_run("clearmap", run_id)).state == "failed"

    for selection, message in (
        (_selection(run_id, "after", indexes=(0,)), "map_indexes name instances of mapped tasks; not mapped: after"),
        (_selection(run_id, indexes=(0,)), "map_indexes name instances of mapped tasks given in task_ids"),
        (_selection(run_id, "m", indexes=(-1,)), "a map_index is 0 or more"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await sched.call("ClearTaskInstances", scheduler_pb2.ClearTaskInstancesRequest(selection=selection))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert message in (refused.value.details() or ""), refused.value.details()


PAST = """
with DAG(dag_id="pastmap", tier=Tier.TIER1, schedule=None, max_active_runs=2) as dag:
    BashOperator.partial(task_id="m", depends_on_past=True).expand(bash_command=["echo a", "echo b"])
    BashOperator(task_id="free", bash_command="echo free")
"""


async def test_depends_on_past_waits_until_every_instance_of_the_previous_run_succeeded(sched: Scheduler) -> None:
    await sched.add_dag("pastmap", PAST)
    first = await sched.trigger("pastmap", run_id="first")
    await sched.end("pastmap", first, ("m", 0))
    await sched.end("pastmap", first, ("m", 1), "failed")
    await sched.end("pastmap", first, ("free", -1))
    assert (await sched.wait_run("pastmap", first)).state == "failed"
    second = await sched.trigger("pastmap", run_id="second")
    await sched.wait_states("pastmap", second, {("free", -1): "queued"})
    await sched.call("Wake", scheduler_pb2.WakeRequest())
    await sched.wait_states("pastmap", second, {("free", -1): "queued"})  # a pass later, still:
    assert (await sched.states("pastmap", second))[("m", -1)] is None  # not expanded: one instance failed before
    mark = scheduler_pb2.MarkTaskInstancesRequest(
        selection=scheduler_pb2.TaskSelection(
            run=common_pb2.DagRunRef(dag_id="pastmap", run_id=first), task_ids=["m"], map_indexes=[1]
        ),
        state="success",
    )
    await sched.call("MarkTaskInstances", mark)
    await sched.wait_states("pastmap", second, {("m", 0): "queued", ("m", 1): "queued"})


HEARTBEAT = """
with DAG(dag_id="beat", tier=Tier.TIER1, schedule=None) as dag:
    BashOperator.partial(task_id="m").expand(bash_command=["sleep 60", "sleep 60"])
"""


@pytest.mark.scheduler_settings(heartbeat_timeout=1)
async def test_an_instance_whose_runner_stops_heartbeating_fails_alone(sched: Scheduler) -> None:
    await sched.add_dag("beat", HEARTBEAT)
    run_id = await sched.trigger("beat")
    await sched.wait_states("beat", run_id, {("m", 0): "queued", ("m", 1): "queued"})
    old = utcnow() - dt.timedelta(seconds=30)
    async with sched.sessions() as s, s.begin():
        for i, beat in ((0, old), (1, utcnow() + dt.timedelta(hours=1))):  # instance 1 keeps heartbeating
            assert await task_instances.guarded_update(
                s, dag_id="beat", run_id=run_id, task_id="m", map_index=i, try_number=1, expected_states=["queued"],
                values={"state": "running", "start_date": old, "last_heartbeat_at": beat},
            )  # fmt: skip
    await sched.wait_states("beat", run_id, {("m", 0): "failed", ("m", 1): "running"})
    rows = await sched.rows("beat", run_id)
    assert "stopped heartbeating" in rows[("m", 0)].error and rows[("m", 1)].error == ""
    async with sched.sessions() as s:
        history = (await s.execute(select(TaskInstanceHistory).where(TaskInstanceHistory.run_id == run_id))).scalars()
        assert [(h.task_id, h.map_index, h.try_number, h.state) for h in history] == [("m", 0, 1, "failed")]

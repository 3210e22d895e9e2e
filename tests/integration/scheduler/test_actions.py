"""People's actions through the owning scheduler: clear, mark, pause, backfill; and dagrun_timeout."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from spinner.db.models import DagModel, DagRun
from spinner.v1 import common_pb2, scheduler_pb2, scheduler_pb2_grpc
from tests.service_calls import service_channel

from .conftest import PARTITION, Stack

HEADER = "import datetime as dt\nfrom spinner import DAG, BashOperator, PythonOperator, Tier\n"


async def call(stack: Stack, method: str, request: Any) -> Any:
    async with service_channel(stack.scheduler_address, stack.home / "identity") as ch:
        stub = scheduler_pb2_grpc.SchedulerServiceStub(ch)
        return await getattr(stub, method)(request, timeout=10)


def selection(dag_id: str, run_id: str, *task_ids: str, down: bool = False) -> scheduler_pb2.TaskSelection:
    return scheduler_pb2.TaskSelection(
        run=common_pb2.DagRunRef(dag_id=dag_id, run_id=run_id), task_ids=list(task_ids), include_downstream=down
    )


async def setup_dag(stack: Stack, name: str, body: str) -> None:
    stack.write_dag(f"{PARTITION}/team/{name}.py", HEADER + body)
    await stack.publish()
    await stack.wait_dag(name)


async def test_clear_runs_failed_tasks_again_with_a_new_try(stack: Stack, tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    await setup_dag(
        stack,
        "fixme",
        f"""
with DAG(dag_id="fixme", tier=Tier.TIER1) as dag:
    ok = BashOperator(task_id="ok", bash_command="echo fine")
    bad = BashOperator(task_id="bad", bash_command="test -e {flag}")
    after = BashOperator(task_id="after", bash_command="echo after")
    ok >> bad >> after
""",
    )
    run_id = await stack.trigger("fixme")
    assert (await stack.wait_run("fixme", run_id)).state == "failed"
    assert await stack.states("fixme", run_id) == {"ok": "success", "bad": "failed", "after": "upstream_failed"}
    flag.touch()  # the person fixes the cause, then clears the failed tasks
    reply = await call(
        stack,
        "ClearTaskInstances",
        scheduler_pb2.ClearTaskInstancesRequest(selection=selection("fixme", run_id), only_failed=True),
    )
    assert sorted(reply.task_ids) == ["after", "bad"]
    assert (await stack.wait_run("fixme", run_id)).state == "success"
    tis = await stack.tis("fixme", run_id)
    assert (tis["ok"].try_number, tis["bad"].try_number, tis["after"].try_number) == (1, 2, 1)


async def test_clear_with_downstream_and_unknown_task(stack: Stack) -> None:
    await setup_dag(
        stack,
        "chain3",
        """
with DAG(dag_id="chain3", tier=Tier.TIER1) as dag:
    BashOperator(task_id="a", bash_command="true") >> BashOperator(task_id="b", bash_command="true") >> \\
        BashOperator(task_id="c", bash_command="true")
""",
    )
    run_id = await stack.trigger("chain3")
    assert (await stack.wait_run("chain3", run_id)).state == "success"
    reply = await call(
        stack,
        "ClearTaskInstances",
        scheduler_pb2.ClearTaskInstancesRequest(selection=selection("chain3", run_id, "b", down=True)),
    )
    assert sorted(reply.task_ids) == ["b", "c"]
    assert (await stack.wait_run("chain3", run_id)).state == "success"
    tis = await stack.tis("chain3", run_id)
    assert (tis["a"].try_number, tis["b"].try_number, tis["c"].try_number) == (1, 2, 2)
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await call(
            stack,
            "ClearTaskInstances",
            scheduler_pb2.ClearTaskInstancesRequest(selection=selection("chain3", run_id, "zzz")),
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "zzz" in (bad.value.details() or "")


async def test_mark_success_stops_a_running_task(stack: Stack) -> None:
    await setup_dag(
        stack,
        "stuck",
        """
import time
with DAG(dag_id="stuck", tier=Tier.TIER1) as dag:
    PythonOperator(task_id="forever", python_callable=lambda: time.sleep(120)) >> BashOperator(task_id="next", bash_command="echo next")
""",
    )
    run_id = await stack.trigger("stuck")

    async def running() -> bool:
        return (await stack.states("stuck", run_id)).get("forever") == "running"

    await stack.wait_for(running, 20, "the task runs")
    reply = await call(
        stack,
        "MarkTaskInstances",
        scheduler_pb2.MarkTaskInstancesRequest(selection=selection("stuck", run_id, "forever"), state="success"),
    )
    assert list(reply.task_ids) == ["forever"]
    assert (await stack.wait_run("stuck", run_id, timeout=30)).state == "success"
    assert await stack.states("stuck", run_id) == {"forever": "success", "next": "success"}


async def test_paused_dag_waits_and_resumes(stack: Stack) -> None:
    await setup_dag(
        stack,
        "pausable",
        'with DAG(dag_id="pausable", tier=Tier.TIER1) as dag:\n    BashOperator(task_id="t", bash_command="true")\n',
    )
    await call(stack, "SetPaused", scheduler_pb2.SetPausedRequest(dag_id="pausable", paused=True))
    run_id = await stack.trigger("pausable")
    await asyncio.sleep(1.5)
    run = await stack.run("pausable", run_id)
    assert run is not None and run.state == "queued"  # created, but nothing runs while paused
    await call(stack, "SetPaused", scheduler_pb2.SetPausedRequest(dag_id="pausable", paused=False))
    assert (await stack.wait_run("pausable", run_id)).state == "success"
    async with stack.sessions() as s:
        dag = await s.get(DagModel, "pausable")
    assert dag is not None and dag.is_paused is False


async def test_backfill_creates_one_run_per_interval_within_max_active_runs(stack: Stack) -> None:
    await setup_dag(
        stack,
        "daily",
        """
with DAG(dag_id="daily", tier=Tier.TIER1, schedule="@daily", start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
         catchup=False, max_active_runs=2) as dag:
    BashOperator(task_id="t", bash_command="echo {{ ds }} {{ data_interval_end }}")
""",
    )
    reply = await call(
        stack, "Backfill", scheduler_pb2.BackfillRequest(dag_id="daily", start="2026-02-01", end="2026-02-05")
    )
    run_ids = [r.run_id for r in reply.runs]
    assert run_ids == [f"backfill__2026-02-0{d}T00:00:00+00:00" for d in range(1, 6)]
    peak = 0

    async def all_done() -> bool:
        nonlocal peak
        async with stack.sessions() as s:
            runs = (await s.execute(select(DagRun).where(DagRun.run_type == "backfill"))).scalars().all()
        peak = max(peak, sum(r.state == "running" for r in runs))
        return all(r.state == "success" for r in runs)

    await stack.wait_for(all_done, 60, "the backfill runs ended")
    assert peak <= 2
    again = await call(
        stack, "Backfill", scheduler_pb2.BackfillRequest(dag_id="daily", start="2026-02-01", end="2026-02-06")
    )
    assert len(again.runs) == 1 and again.skipped_existing == 5
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await call(
            stack, "Backfill", scheduler_pb2.BackfillRequest(dag_id="daily", start="2026-02-05", end="2026-02-01")
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_dagrun_timeout_fails_the_run_and_skips_what_is_left(stack: Stack) -> None:
    await setup_dag(
        stack,
        "too_long",
        """
with DAG(dag_id="too_long", tier=Tier.TIER1, dagrun_timeout=dt.timedelta(seconds=2)) as dag:
    BashOperator(task_id="slow", bash_command="sleep 60") >> BashOperator(task_id="never", bash_command="true")
""",
    )
    run_id = await stack.trigger("too_long")
    run = await stack.wait_run("too_long", run_id, timeout=30)
    assert run.state == "failed"
    tis = await stack.tis("too_long", run_id)
    assert tis["slow"].state == "skipped" and "dagrun_timeout" in tis["slow"].error

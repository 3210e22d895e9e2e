"""Operators the scheduler and executor treat specially, through the real stack on SQLite and MariaDB:
EmptyOperator (ended by the scheduler, no process), branching and short-circuits (the executor skips
what the runner names), depends_on_past and wait_for_downstream."""

from __future__ import annotations

from tests.service_calls import service_channel

from .conftest import PARTITION, Stack

HEADER = """
import datetime as dt
from spinner import DAG, BashOperator, EmptyOperator, PythonOperator, Tier, TriggerRule
"""


async def test_empty_operator_is_ended_by_the_scheduler_without_a_process(stack: Stack) -> None:
    stack.write_dag(
        f"{PARTITION}/team/empty.py",
        HEADER
        + """
with DAG(dag_id="empty", tier=Tier.TIER1, schedule=None) as dag:
    start = EmptyOperator(task_id="start")
    work = BashOperator(task_id="work", bash_command="echo work")
    fails = BashOperator(task_id="fails", bash_command="exit 1")
    join = EmptyOperator(task_id="join", trigger_rule=TriggerRule.ALL_DONE)
    never = EmptyOperator(task_id="never")
    start >> [work, fails] >> join
    fails >> never
""",
    )
    await stack.publish()
    await stack.wait_dag("empty")
    run_id = await stack.trigger("empty")
    await stack.wait_run("empty", run_id)
    tis = await stack.tis("empty", run_id)
    states = {t: ti.state for t, ti in tis.items()}
    assert states == {
        "start": "success", "work": "success", "fails": "failed", "join": "success", "never": "upstream_failed",
    }, states  # fmt: skip
    for task_id in ("start", "join"):
        ti = tis[task_id]
        # No try was ever queued: no process, no pod, no log.
        assert ti.try_number == 0 and ti.hostname == "" and ti.start_date is not None, (task_id, ti.__dict__)
    log_root = stack.home / "logs"
    logs = [str(p) for p in log_root.rglob("*")] if log_root.exists() else []
    assert any("task_id=work" in p for p in logs), logs  # the check below looks in the right place
    assert not any("task_id=start" in p or "task_id=join" in p for p in logs), logs
    assert tis["work"].start_date >= tis["start"].end_date  # type: ignore[operator]


async def test_branch_and_short_circuit_skip_through_the_executor(stack: Stack) -> None:
    stack.write_dag(
        f"{PARTITION}/team/branchy.py",
        HEADER
        + """
from spinner import BranchPythonOperator, ShortCircuitOperator
with DAG(dag_id="branchy", tier=Tier.TIER1, schedule=None) as dag:
    pick = BranchPythonOperator(task_id="pick", python_callable=lambda dag_run: dag_run.conf["go"])
    left = BashOperator(task_id="left", bash_command="echo left")
    after_left = BashOperator(task_id="after_left", bash_command="echo after left")
    right = BashOperator(task_id="right", bash_command="echo right")
    join = EmptyOperator(task_id="join", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    plain_join = EmptyOperator(task_id="plain_join")
    check = ShortCircuitOperator(task_id="check", python_callable=lambda: False)
    gated = BashOperator(task_id="gated", bash_command="echo gated")
    cleanup = BashOperator(task_id="cleanup", bash_command="echo cleanup", trigger_rule=TriggerRule.ALL_DONE)
    pick >> [left, right]
    left >> after_left >> [join, plain_join]
    right >> [join, plain_join]
    join >> check >> gated >> cleanup
""",
    )
    await stack.publish()
    await stack.wait_dag("branchy")
    run_id = await stack.trigger("branchy", conf='{"go": "right"}')
    run = await stack.wait_run("branchy", run_id)
    tis = await stack.tis("branchy", run_id)
    states = {t: ti.state for t, ti in tis.items()}
    assert states == {
        "pick": "success", "left": "skipped", "after_left": "skipped", "right": "success", "join": "success",
        "plain_join": "skipped", "check": "success", "gated": "skipped", "cleanup": "skipped",
    }, states  # fmt: skip
    assert run.state == "success"
    assert tis["left"].try_number == 0 and "Skipped by pick" in tis["left"].error, tis["left"].error
    # ignore_downstream_trigger_rules: cleanup (all_done) was skipped by the short circuit itself.
    assert "Skipped by check" in tis["cleanup"].error, tis["cleanup"].error

    bad = await stack.trigger("branchy", conf='{"go": "after_left"}', run_id="bad_branch")
    await stack.wait_run("branchy", bad)
    tis = await stack.tis("branchy", bad)
    assert tis["pick"].state == "failed", {t: ti.state for t, ti in tis.items()}
    assert "not directly downstream" in tis["pick"].error, tis["pick"].error
    assert tis["left"].state == "upstream_failed" and tis["right"].state == "upstream_failed"


async def test_depends_on_past_and_wait_for_downstream_wait_on_the_previous_run(stack: Stack) -> None:

    from spinner.v1 import common_pb2, scheduler_pb2, scheduler_pb2_grpc

    stack.write_dag(
        f"{PARTITION}/team/past.py",
        HEADER
        + """
def maybe_fail(name, dag_run):
    if dag_run.conf.get(name):
        raise RuntimeError(f"{name} fails on request")

with DAG(dag_id="past", tier=Tier.TIER1, schedule=None, max_active_runs=2) as dag:
    a = EmptyOperator(task_id="a", wait_for_downstream=True)
    b = PythonOperator(task_id="b", python_callable=maybe_fail, op_kwargs={"name": "fail_b"})
    c = PythonOperator(task_id="c", python_callable=maybe_fail, op_kwargs={"name": "fail_c"}, depends_on_past=True)
    free = BashOperator(task_id="free", bash_command="echo free")
    later = BashOperator(task_id="later", bash_command="echo later")
    a >> b
    free >> later
""",
    )
    await stack.publish()
    await stack.wait_dag("past")
    first = await stack.trigger("past", conf='{"fail_b": true, "fail_c": true}', run_id="first")
    await stack.wait_run("past", first)
    assert await stack.states("past", first) == {
        "a": "success", "b": "failed", "c": "failed", "free": "success", "later": "success",
    }  # fmt: skip
    second = await stack.trigger("past", run_id="second")

    async def independent_tasks_done() -> bool:
        return (await stack.states("past", second)).get("later") == "success"

    await stack.wait_for(independent_tasks_done, 60, "free and later of the second run succeeded")
    states = await stack.states("past", second)
    # a waits for b of the first run (wait_for_downstream), c for c of the first run (depends_on_past).
    assert states["a"] is None and states["c"] is None, states

    async with service_channel(stack.scheduler_address, stack.home / "identity") as channel:
        stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
        await stub.MarkTaskInstances(
            scheduler_pb2.MarkTaskInstancesRequest(
                selection=scheduler_pb2.TaskSelection(
                    run=common_pb2.DagRunRef(dag_id="past", run_id=first), task_ids=["b", "c"]
                ),
                state="success",
                requested_by="test",
            ),
            timeout=10,
        )
    run = await stack.wait_run("past", second)
    assert run.state == "success", await stack.states("past", second)
    assert await stack.states("past", second) == {t: "success" for t in ("a", "b", "c", "free", "later")}


async def test_trigger_dag_run_through_the_executor_and_the_owning_scheduler(stack: Stack) -> None:
    from sqlalchemy import select

    from spinner.db.models import AuditLog

    stack.write_dag(
        f"{PARTITION}/team/nightly.py",
        HEADER
        + """
from spinner import TriggerDagRunOperator
with DAG(dag_id="report", tier=Tier.TIER1, schedule=None) as report:
    PythonOperator(task_id="build", python_callable=lambda dag_run: print("building", dag_run.conf))

with DAG(dag_id="nightly", tier=Tier.TIER1, schedule=None) as nightly:
    kick = TriggerDagRunOperator(
        task_id="kick", trigger_dag_id="report", trigger_run_id="from_{{ run_id }}",
        conf={"day": "{{ ds }}", "source": "nightly"}, wait_for_completion=True, poke_interval=0.2,
    )
    again = TriggerDagRunOperator(
        task_id="again", trigger_dag_id="report", trigger_run_id="from_{{ run_id }}", skip_when_already_exists=True
    )
    reset = TriggerDagRunOperator(
        task_id="reset", trigger_dag_id="report", trigger_run_id="from_{{ run_id }}", reset_dag_run=True,
        wait_for_completion=True, poke_interval=0.2, trigger_rule=TriggerRule.ALL_DONE,
    )
    clash = TriggerDagRunOperator(
        task_id="clash", trigger_dag_id="report", trigger_run_id="from_{{ run_id }}", trigger_rule=TriggerRule.ALL_DONE
    )
    missing = TriggerDagRunOperator(task_id="missing", trigger_dag_id="no_such_dag")
    # A run id from DAG code reaches the scheduler without the gateway's check: refused there too.
    hostile = TriggerDagRunOperator(task_id="hostile", trigger_dag_id="report", trigger_run_id="--help")
    kick >> again >> reset >> clash
""",
    )
    await stack.publish()
    await stack.wait_dag("nightly")
    await stack.wait_dag("report")
    run_id = await stack.trigger("nightly", run_id="n1")
    await stack.wait_run("nightly", run_id, timeout=90)
    tis = await stack.tis("nightly", run_id)
    states = {t: ti.state for t, ti in tis.items()}
    assert states == {
        "kick": "success", "again": "skipped", "reset": "success", "clash": "failed", "missing": "failed",
        "hostile": "failed",
    }, ({t: ti.error for t, ti in tis.items()})  # fmt: skip
    assert "run_id must start with a letter or digit" in tis["hostile"].error, tis["hostile"].error
    assert await stack.run("report", "--help") is None
    assert "already has a run" in tis["clash"].error and "reset_dag_run=True" in tis["clash"].error
    assert "DAG 'no_such_dag' not found" in tis["missing"].error, tis["missing"].error

    triggered = await stack.run("report", "from_n1")
    assert triggered is not None and triggered.state == "success"
    assert triggered.conf == {"day": triggered.logical_date.strftime("%Y-%m-%d"), "source": "nightly"}
    assert (triggered.triggering_dag_id, triggered.triggering_run_id, triggered.triggering_task_id) == (
        "nightly", "n1", "kick",
    )  # fmt: skip
    assert triggered.triggered_by == "task nightly.kick"
    assert (await stack.tis("report", "from_n1"))["build"].try_number == 2  # reset_dag_run ran it again
    async with stack.sessions() as s:
        audit = (await s.execute(select(AuditLog).where(AuditLog.action == "trigger"))).scalars().all()
    entries = sorted((a.username, a.dag_id, a.outcome) for a in audit)
    assert entries == [
        ("task nightly.again", "report", "error"),
        ("task nightly.clash", "report", "error"),
        ("task nightly.hostile", "report", "error"),
        ("task nightly.kick", "report", "ok"),
        ("task nightly.missing", "no_such_dag", "error"),
        ("task nightly.reset", "report", "ok"),
    ], entries

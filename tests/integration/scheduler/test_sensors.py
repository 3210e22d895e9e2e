"""Sensors over a real scheduler and executor with real runner processes (docs/adr/0006-sensor-reschedule.md).

Reschedule mode frees the try's pool slot between pokes (a pool of one slot runs another task
while the sensor waits), keeps its try_number, and times out from the first poke.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import grpc
from sqlalchemy import select

from spinner.db.models import Pool, TaskInstanceHistory
from spinner.v1 import scheduler_pb2, scheduler_pb2_grpc
from tests.service_calls import service_channel

from .conftest import PARTITION, Stack

SLOT = """
from spinner import DAG, BashOperator, FileSensor, Tier
with DAG(dag_id="slot", tier=Tier.TIER1) as dag:
    # The sensor goes first (higher priority) and waits for what the other task of its one-slot pool
    # makes: only a sensor that frees its slot between pokes lets that task run at all.
    FileSensor(task_id="wait", filepath="{marker}", mode="reschedule", poke_interval=1, timeout=60,
               pool="tiny", priority_weight=10)
    BashOperator(task_id="make", bash_command="sleep 1 && touch {marker}", pool="tiny")
"""

TIMEOUTS = """
from spinner import DAG, PythonSensor, Tier
with DAG(dag_id="timeouts", tier=Tier.TIER1) as dag:
    PythonSensor(task_id="hard", python_callable=lambda: False, mode="reschedule", poke_interval=0.3,
                 timeout=1.5, retries=2)
    PythonSensor(task_id="soft", python_callable=lambda: False, mode="reschedule", poke_interval=0.3,
                 timeout=1.5, soft_fail=True)
    PythonSensor(task_id="poking", python_callable=lambda: False, mode="poke", poke_interval=0.2, timeout=1)
"""

EXTERNAL = """
from spinner import DAG, BashOperator, ExternalTaskSensor, Tier
with DAG(dag_id="producer", tier=Tier.TIER1) as producer:
    BashOperator(task_id="publish", bash_command="echo published")
with DAG(dag_id="consumer", tier=Tier.TIER1) as consumer:
    ExternalTaskSensor(task_id="wait_publish", external_dag_id="producer", external_task_id="publish",
                       mode="reschedule", poke_interval=0.3, timeout=60)
    ExternalTaskSensor(task_id="wait_run", external_dag_id="producer", mode="poke", poke_interval=0.3,
                       timeout=60)
"""


async def _history(stack: Stack, dag_id: str, run_id: str) -> list[TaskInstanceHistory]:
    async with stack.sessions() as s:
        q = select(TaskInstanceHistory).where(
            TaskInstanceHistory.dag_id == dag_id, TaskInstanceHistory.run_id == run_id
        )
        return list((await s.execute(q)).scalars())


async def test_a_rescheduled_sensor_frees_its_pool_slot_between_pokes(stack: Stack, tmp_path: Path) -> None:
    async with stack.sessions() as s, s.begin():
        s.add(Pool(name="tiny", slots=1, description="one at a time"))
    stack.write_dag(f"{PARTITION}/team/slot.py", SLOT.format(marker=tmp_path / "partner-file.csv"))
    await stack.publish()
    await stack.wait_dag("slot")
    run_id = await stack.trigger("slot")
    run = await stack.wait_run("slot", run_id, timeout=90)
    tis = await stack.tis("slot", run_id)
    detail = {t: (ti.state, ti.try_number, ti.reschedule_count, ti.error) for t, ti in tis.items()}
    assert run.state == "success", detail
    wait = tis["wait"]
    assert wait.try_number == 1, detail  # waiting is not a retry
    assert wait.reschedule_count >= 1, detail
    history = [h for h in await _history(stack, "slot", run_id) if h.task_id == "wait"]
    assert [(h.try_number, h.state) for h in history] == [(1, "success")]
    log = (stack.home / "logs").rglob("*")
    text = "\n".join(p.read_text() for p in log if p.is_file() and "wait" in str(p) and p.suffix == ".log")
    assert text.count("pokes again at") >= 1, text[-3000:]


async def test_sensor_timeouts_fail_without_retry_or_skip_with_soft_fail(stack: Stack) -> None:
    stack.write_dag(f"{PARTITION}/team/timeouts.py", TIMEOUTS)
    await stack.publish()
    await stack.wait_dag("timeouts")
    run_id = await stack.trigger("timeouts")
    await stack.wait_run("timeouts", run_id, timeout=90)
    tis = await stack.tis("timeouts", run_id)
    detail = {t: (ti.state, ti.try_number, ti.error) for t, ti in tis.items()}
    assert tis["hard"].state == "failed", detail
    assert tis["hard"].try_number == 1, detail  # retries=2, but a timeout is not retried
    assert "timed out" in tis["hard"].error and "timeout of 1.5 s" in tis["hard"].error, detail
    assert tis["soft"].state == "skipped", detail
    assert "soft_fail" in tis["soft"].error, detail
    assert tis["poking"].state == "failed" and "timed out" in tis["poking"].error, detail


async def _trigger_at(stack: Stack, dag_id: str, when: dt.datetime) -> str:
    async with service_channel(stack.scheduler_address, stack.home / "identity") as ch:
        stub = scheduler_pb2_grpc.SchedulerServiceStub(ch)
        reply = await stub.TriggerDagRun(
            scheduler_pb2.TriggerDagRunRequest(dag_id=dag_id, logical_date=when.isoformat()), timeout=10
        )
    return str(reply.run.run_id)


async def test_external_task_sensor_waits_for_another_dags_run(stack: Stack) -> None:
    stack.write_dag(f"{PARTITION}/team/external.py", EXTERNAL)
    await stack.publish()
    await stack.wait_dag("consumer")
    when = dt.datetime(2026, 3, 1, 6, 0, tzinfo=dt.UTC)
    consumer_run = await _trigger_at(stack, "consumer", when)

    async def waiting() -> bool:
        return (await stack.states("consumer", consumer_run)).get("wait_publish") == "up_for_reschedule"

    await stack.wait_for(waiting, 60, "the consumer's sensor waits between pokes")
    assert (await stack.run("consumer", consumer_run)).state == "running"  # type: ignore[union-attr]
    await _trigger_at(stack, "producer", when)
    run = await stack.wait_run("consumer", consumer_run, timeout=90)
    tis = await stack.tis("consumer", consumer_run)
    assert run.state == "success", {t: (ti.state, ti.error) for t, ti in tis.items()}
    assert tis["wait_publish"].try_number == 1


TIMED = """
import datetime as dt
from spinner import DAG, BashOperator, DateTimeSensor, TimeDeltaSensor, Tier
with DAG(dag_id="timed", tier=Tier.TIER1) as dag:
    soon = TimeDeltaSensor(task_id="soon", delta=dt.timedelta(seconds=2), mode="reschedule", poke_interval=600)
    past = DateTimeSensor(task_id="past", target_time=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), mode="reschedule")
    never = DateTimeSensor(task_id="never", target_time=dt.datetime(2999, 1, 1, tzinfo=dt.UTC), mode="reschedule",
                           timeout=1)
    never_soft = DateTimeSensor(task_id="never_soft", target_time=dt.datetime(2999, 1, 1, tzinfo=dt.UTC),
                                mode="reschedule", timeout=1, soft_fail=True)
    after = BashOperator(task_id="after", bash_command="echo after")
    soon >> after
"""


async def test_time_sensors_in_reschedule_mode_are_decided_by_the_scheduler_without_a_process(stack: Stack) -> None:
    stack.write_dag(f"{PARTITION}/team/timed.py", TIMED)
    await stack.publish()
    await stack.wait_dag("timed")
    run_id = await stack.trigger("timed")

    async def waiting() -> bool:
        return (await stack.states("timed", run_id)).get("soon") in ("up_for_reschedule", "success")

    await stack.wait_for(waiting, 30, "the time sensor waits")
    run = await stack.wait_run("timed", run_id, timeout=60)
    tis = await stack.tis("timed", run_id)
    detail = {t: (ti.state, ti.try_number, ti.error) for t, ti in tis.items()}
    assert {t: ti.state for t, ti in tis.items()} == {
        "soon": "success", "past": "success", "never": "failed", "never_soft": "skipped", "after": "success",
    }, detail  # fmt: skip
    assert run.state == "failed", detail  # "never" is a leaf that failed
    for sensor in ("soon", "past", "never", "never_soft"):
        assert tis[sensor].try_number == 0, detail  # no process was ever started
    assert "timed out" in tis["never"].error and "soft_fail" in tis["never_soft"].error, detail
    soon = tis["soon"]
    assert soon.end_date is not None and run.logical_date is not None
    assert soon.end_date >= run.logical_date + dt.timedelta(seconds=2), (soon.end_date, run.logical_date)
    assert not [p for p in (stack.home / "logs").rglob("*.log") if "soon" in str(p) or "never" in str(p)]


async def test_runner_service_refuses_bad_sensor_requests(stack: Stack) -> None:
    """GetTaskState needs the try's token; a RESCHEDULE needs its time; a bad date is INVALID_ARGUMENT."""
    from spinner.v1 import common_pb2, executor_pb2, executor_pb2_grpc

    key = common_pb2.TaskTryKey(dag_id="d", run_id="r", task_id="t", try_number=1)
    async with grpc.aio.insecure_channel(stack.executor_address) as ch:
        stub = executor_pb2_grpc.RunnerServiceStub(ch)
        calls = [
            (stub.GetTaskState(executor_pb2.RunnerGetTaskStateRequest(
                key=key, token="forged", dag_id="other", logical_date="2026-01-01T00:00:00+00:00"), timeout=10),
             grpc.StatusCode.PERMISSION_DENIED),
            (stub.GetTaskState(executor_pb2.RunnerGetTaskStateRequest(
                key=key, token="forged", dag_id="other", logical_date="yesterday"), timeout=10),
             grpc.StatusCode.INVALID_ARGUMENT),
            (stub.Finish(executor_pb2.RunnerFinishRequest(
                key=key, token="forged", outcome=executor_pb2.TASK_OUTCOME_RESCHEDULE), timeout=10),
             grpc.StatusCode.INVALID_ARGUMENT),
        ]  # fmt: skip
        for call, code in calls:
            try:
                await call
            except grpc.aio.AioRpcError as e:
                assert e.code() == code, (e.code(), e.details())
                assert e.details(), e
            else:
                raise AssertionError(f"expected {code}")


RETRYING = """
import datetime as dt
from pathlib import Path
from spinner import DAG, PythonSensor, Tier


def flaky() -> bool:
    pokes = Path("{counter}")
    n = int(pokes.read_text()) + 1 if pokes.exists() else 1
    pokes.write_text(str(n))
    if n == 2:
        raise ConnectionError("the partner's server hung up")  # an error, not a wait: retried
    return n >= 4


with DAG(dag_id="retrying", tier=Tier.TIER1) as dag:
    PythonSensor(task_id="wait", python_callable=flaky, mode="reschedule", poke_interval=0.3, timeout=60,
                 retries=1, retry_delay=dt.timedelta(seconds=0))
"""


async def test_a_retry_of_a_rescheduled_sensor_starts_a_fresh_try(stack: Stack, tmp_path: Path) -> None:
    stack.write_dag(f"{PARTITION}/team/retrying.py", RETRYING.format(counter=tmp_path / "pokes"))
    await stack.publish()
    await stack.wait_dag("retrying")
    run_id = await stack.trigger("retrying")
    run = await stack.wait_run("retrying", run_id, timeout=90)
    ti = (await stack.tis("retrying", run_id))["wait"]
    history = sorted((h.try_number, h.state) for h in await _history(stack, "retrying", run_id))
    assert run.state == "success", (ti.state, ti.error, history)
    # Try 1: poke 1 rescheduled, poke 2 raised (up_for_retry). Try 2: poke 3 rescheduled, poke 4 met.
    assert history == [(1, "up_for_retry"), (2, "success")], history
    assert (ti.try_number, ti.reschedule_count) == (2, 1), (ti.try_number, ti.reschedule_count)
    assert ti.first_poke_at is not None and ti.start_date is not None and ti.first_poke_at <= ti.start_date
    text = (tmp_path / "pokes").read_text()
    assert text == "4", text

"""A clean executor stop (an upgrade, Ctrl-C of standalone) neither kills nor fails the tries that run.

With `local_tries_on_stop = "keep"` (the default) the runners of a stopping executor keep running
in their own sessions, finish their commands while no executor is there, and report to the next
executor on the same port, which adopts them (backends/local.py). With "stop" they are killed and
recorded as failed, as before. The harnesses of the other tests choose "stop" so no test's task
outlives its test.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from spinner.logpaths import complete_marker, local_log_path
from spinner.processes import is_alive

from .conftest import PARTITION, Stack

TASKS = 3


def _dag(dag_id: str, record: str) -> str:
    return f"""
from spinner import DAG, BashOperator, Tier
with DAG(dag_id="{dag_id}", tier=Tier.TIER1, max_active_tasks=8, default_args={{"retries": 0}}) as dag:
    for i in range({TASKS}):
        BashOperator(task_id=f"t{{i}}", bash_command=f"echo ran >> {record}/t{{i}}; sleep 3; echo done t{{i}}")
"""


async def _all_running(stack: Stack, dag_id: str, run_id: str, record: Path) -> bool:
    tis = await stack.tis(dag_id, run_id)
    return (
        len(tis) == TASKS and all(ti.state == "running" and ti.pid for ti in tis.values()) and _started(record) == TASKS
    )


def _started(record: Path) -> int:
    return len(list(record.iterdir()))


async def _every_command_running(stack: Stack, tmp_path: Path, dag_id: str) -> tuple[Path, str, dict[str, int]]:
    """Publishes and triggers `dag_id`; returns its record folder, run id and runner pids once every command runs."""
    record = tmp_path / "executions"
    record.mkdir()
    stack.write_dag(f"{PARTITION}/team/{dag_id}.py", _dag(dag_id, str(record)))
    await stack.publish()
    await stack.wait_dag(dag_id)
    run_id = await stack.trigger(dag_id)
    await stack.wait_for(lambda: _all_running(stack, dag_id, run_id, record), 60, "every command running")
    return record, run_id, {t: ti.pid or 0 for t, ti in (await stack.tis(dag_id, run_id)).items()}


def _executions(record: Path) -> dict[str, int]:
    """How often each task's command ran, from the commands' own record."""
    return {p.name: p.read_text().count("ran") for p in sorted(record.iterdir())}


async def _each_succeeded_once(stack: Stack, dag_id: str, run_id: str, record: Path) -> None:
    """The run succeeded, every task in its first try, and every command ran exactly once."""
    run = await stack.wait_run(dag_id, run_id, timeout=60)
    tis = await stack.tis(dag_id, run_id)
    detail = {t: (ti.state, ti.try_number, ti.error) for t, ti in sorted(tis.items())}
    executions = _executions(record)
    assert run.state == "success", detail
    assert all(ti.state == "success" and ti.try_number == 1 for ti in tis.values()), detail
    assert executions == {f"t{i}": 1 for i in range(TASKS)}, executions


@pytest.mark.parametrize("db_url", ["sqlite", "mariadb"], indirect=True)
@pytest.mark.executor_settings(port="free", local_tries_on_stop="keep")
async def test_tries_keep_running_through_a_clean_executor_restart_and_are_recorded_once(
    stack: Stack, tmp_path: Path
) -> None:
    record, run_id, pids = await _every_command_running(stack, tmp_path, "keep")

    await stack.stop_executor()
    assert all(is_alive(pid) for pid in pids.values()), f"a runner was stopped with its executor: {pids}"
    logs = {t: local_log_path(stack.home / "logs", "keep", run_id, t, 1) for t in pids}
    # One command ends while no executor is there: its runner's last reports wait for the next one.
    await stack.wait_for(lambda: "done t0" in logs["t0"].read_text(), 30, "t0's command done, no executor up")
    await stack.start_executor()

    await _each_succeeded_once(stack, "keep", run_id, record)
    for task_id, log in logs.items():
        assert complete_marker(log).exists(), f"{task_id}: log not marked complete"
        assert f"done {task_id}" in log.read_text(), log.read_text()[-2000:]


@pytest.mark.executor_settings(port="free", local_tries_on_stop="stop")
async def test_with_stop_a_clean_executor_stop_ends_its_tries(stack: Stack, tmp_path: Path) -> None:
    _, run_id, pids = await _every_command_running(stack, tmp_path, "stopped")

    await stack.stop_executor()
    assert not any(is_alive(pid) for pid in pids.values()), f"a runner outlived its executor: {pids}"
    run = await stack.wait_run("stopped", run_id, timeout=30)
    tis = await stack.tis("stopped", run_id)
    assert run.state == "failed"
    assert all(ti.state == "failed" for ti in tis.values()), {t: (ti.state, ti.error) for t, ti in tis.items()}


def _pod_dag(dag_id: str, record: str) -> str:
    return f"""
from spinner import DAG, BashOperator, Tier
with DAG(dag_id="{dag_id}", tier=Tier.TIER1, max_active_tasks=8, default_args={{"retries": 0}}) as dag:
    for i in range({TASKS}):
        BashOperator(task_id=f"t{{i}}", bash_command=f"echo ran >> {record}/t{{i}}; sleep 2; echo end >> {record}/t{{i}}")
"""


# Standalone's restart (Ctrl-C, then start again) on pods: every service goes away at once, the pods
# run on, their commands end and their runners (no longer heartbeating: the task is done) retry their
# Finish until an executor answers. The new scheduler must not take their old heartbeats for dead
# runners before they had a whole heartbeat timeout to reach the new executor.
@pytest.mark.parametrize("db_url", ["sqlite", "mariadb"], indirect=True)
@pytest.mark.executor_settings(backend="kubernetes", k8s_namespace="spinner", k8s_pending_timeout=30, port="free")
@pytest.mark.scheduler_settings(heartbeat_timeout=3)
async def test_pods_whose_commands_end_while_every_service_is_away_are_recorded_success(
    stack: Stack, tmp_path: Path, fake_kubernetes: object
) -> None:
    record = tmp_path / "executions"
    record.mkdir()
    stack.write_dag(f"{PARTITION}/team/pods.py", _pod_dag("pods", str(record)))
    await stack.publish()
    await stack.wait_dag("pods")
    run_id = await stack.trigger("pods")
    await stack.wait_for(lambda: _all_running(stack, "pods", run_id, record), 60, "every command running")

    await stack.stop_scheduler()
    await stack.stop_executor()

    def ended() -> bool:
        return all("end" in (record / f"t{i}").read_text() for i in range(TASKS))

    await stack.wait_for(ended, 30, "every command ended, no service up")

    async def heartbeats_stale() -> bool:  # longer ago than the scheduler's heartbeat timeout
        now = dt.datetime.now(dt.UTC)
        beats = [ti.last_heartbeat_at for ti in (await stack.tis("pods", run_id)).values()]
        return all(b is not None and (now - b.replace(tzinfo=dt.UTC)).total_seconds() > 4 for b in beats)

    await stack.wait_for(heartbeats_stale, 30, "the runners' last heartbeats older than the timeout")
    await stack.start_executor()  # as standalone starts them: the executor, then the scheduler
    await stack.start_scheduler()

    await _each_succeeded_once(stack, "pods", run_id, record)

"""kill -9 of the executor loses nothing and repeats nothing (issue 13, the small version of `make resilience`).

A real `spinner executor` process runs the tries of a real `spinner scheduler` process. While every
task runs, the executor is killed with SIGKILL; its runners outlive it (a fork server's children
keep running) and finish their commands while no executor is there. One runner is killed too,
as if its machine had taken it. A new executor, on the same port and with the same name, adopts
the runners that are still alive (backends/local.py), takes their reports (their tokens are
still valid: services/executor/tokens.py) and ends at once the try whose runner it could not find.

What a user sees: every task that ran succeeded exactly once and is recorded so; the try whose
runner was lost is retried within seconds, not after a heartbeat timeout; every log is
marked complete.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from spinner.logpaths import complete_marker, local_log_path
from tests.fakes.tcp_proxy import free_port

from .conftest import PARTITION, Stack
from .service_processes import ServiceProcesses, serving

TASKS = 6


def dag_source(record: Path) -> str:
    return f"""
from spinner import DAG, BashOperator, Tier
with DAG(dag_id="survivors", tier=Tier.TIER1, max_active_tasks=32, default_args={{"retries": 0}}) as dag:
    for i in range({TASKS}):
        BashOperator(task_id=f"t{{i}}", bash_command=f"echo ran >> {record}/t{{i}}; sleep 4; echo done t{{i}}")
with DAG(dag_id="lost", tier=Tier.TIER1, default_args={{"retries": 1, "retry_delay": 0}}) as lost:
    BashOperator(task_id="victim", bash_command=f"echo ran >> {record}/victim; sleep 30")
"""


@pytest.fixture
def services(stack: Stack, tmp_path: Path) -> Iterator[ServiceProcesses]:
    group = ServiceProcesses(
        stack.home, stack.db_url, tmp_path, SPINNER_POLL_INTERVAL="0.2", SPINNER_RUNNER_HEARTBEAT_INTERVAL="1",
        SPINNER_LEASE_SECONDS="3", SPINNER_FERNET_KEY=os.environ["SPINNER_FERNET_KEY"],
    )  # fmt: skip
    yield group
    group.stop_all()


@pytest.mark.parametrize("db_url", ["mariadb"], indirect=True)
async def test_a_killed_executors_tries_are_adopted_and_recorded_once(
    stack: Stack, services: ServiceProcesses, tmp_path: Path
) -> None:
    record = tmp_path / "executions"
    record.mkdir()
    stack.write_dag(f"{PARTITION}/team/survivors.py", dag_source(record))
    await stack.publish()
    await stack.wait_dag("survivors")
    await stack.wait_dag("lost")
    # The stack's own scheduler and executor make way for real processes.
    await stack.stop_scheduler()
    await stack.stop_executor()
    port = free_port()
    services.start("executor", "executor", "--port", str(port))
    # The heartbeat timeout is 6 s here (six 1 s heartbeats): shorter than the executor's restart on a
    # loaded machine. The scheduler sees the executor away and times no try out until it is back.
    services.start("scheduler", "scheduler", "--partition", PARTITION, "--port", "0",
                   SPINNER_EXECUTOR_ADDRESS=f"127.0.0.1:{port}")  # fmt: skip
    survivors = await stack.trigger_via_lease("survivors", "survivors_1")
    lost = await stack.trigger_via_lease("lost", "lost_1")

    async def all_running() -> bool:
        states = {**await stack.states("survivors", survivors), **await stack.states("lost", lost)}
        started = {p.name for p in record.iterdir()}
        return all(s == "running" for s in states.values()) and len(started) == TASKS + 1

    await stack.wait_for(all_running, 60, "every command running")
    victim = (await stack.tis("lost", lost))["victim"]
    assert victim.pid, "the victim's runner recorded no pid"
    services.kill("executor")
    os.killpg(victim.pid, signal.SIGKILL)  # its runner and its command: gone while no executor watches
    await stack.wait_for(lambda: _gone(victim.pid or 0), 10, "the victim's runner gone")
    await asyncio.sleep(8)  # the executor stays away longer than the heartbeat timeout: nothing may time out
    services.start("executor", "executor", "--port", str(port))
    await stack.wait_for(lambda: serving(f"127.0.0.1:{port}"), 120, "the new executor serving")
    restarted_at = dt.datetime.now(dt.UTC)

    run = await stack.wait_run("survivors", survivors, timeout=60)
    tis = await stack.tis("survivors", survivors)
    detail = {t: (ti.state, ti.try_number, ti.error) for t, ti in sorted(tis.items())}
    executions = {p.name: p.read_text().count("ran") for p in sorted(record.iterdir())}
    assert run.state == "success", (detail, executions, services.log("executor")[-3000:])
    assert all(ti.state == "success" and ti.try_number == 1 for ti in tis.values()), detail
    assert {t: n for t, n in executions.items() if t != "victim"} == {f"t{i}": 1 for i in range(TASKS)}, executions
    for task_id in tis:
        log = local_log_path(stack.home / "logs", "survivors", survivors, task_id, 1)
        assert complete_marker(log).exists(), f"{task_id}: log not marked complete"
        assert f"done {task_id}" in log.read_text(), log.read_text()[-2000:]

    # The lost runner's try was ended by the new executor at once, and retried.
    async def retried() -> bool:
        victim = (await stack.tis("lost", lost))["victim"]
        return victim.try_number == 2 and victim.state in ("queued", "running")

    await stack.wait_for(retried, 20, "the victim's try retried")
    async with stack.sessions() as s:
        from sqlalchemy import select

        from spinner.db.models import TaskInstanceHistory

        first = (
            await s.execute(
                select(TaskInstanceHistory).where(
                    TaskInstanceHistory.dag_id == "lost", TaskInstanceHistory.try_number == 1
                )
            )
        ).scalar_one()
    assert "found no process" in first.error, first.error
    assert first.end_date is not None and first.end_date - restarted_at < dt.timedelta(seconds=20), first.end_date


def _gone(pid: int) -> bool:
    from spinner.processes import is_alive

    return not is_alive(pid)

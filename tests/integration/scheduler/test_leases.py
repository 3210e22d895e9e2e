"""Partition ownership: one leader per partition, a standby takes over, a paused leader cannot write.

Schedulers run as real `spinner scheduler` processes, so killing and pausing them is real.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from spinner.db.engine import IDLE_TRANSACTION_TIMEOUT
from spinner.db.models import PartitionLease, TaskInstance, TaskInstanceHistory

from .conftest import PARTITION, Stack
from .service_processes import ServiceProcesses

DAG_SOURCE = """
from spinner import DAG, BashOperator, Tier
with DAG(dag_id="busy", tier=Tier.TIER1, max_active_runs=50, max_active_tasks=50) as dag:
    first = BashOperator(task_id="first", bash_command="sleep 0.2")
    for i in range(4):
        first >> BashOperator(task_id=f"fan_{i}", bash_command="sleep 0.1")
"""


class Schedulers(ServiceProcesses):
    """`spinner scheduler` processes of the test's partition, handing to the stack's executor."""

    def __init__(self, stack: Stack, executor_address: str, tmp_path: Path) -> None:
        super().__init__(
            stack.home, stack.db_url, tmp_path, SPINNER_LEASE_SECONDS="3", SPINNER_POLL_INTERVAL="0.2",
            SPINNER_EXECUTOR_ADDRESS=executor_address,
        )  # fmt: skip

    def start(self, name: str, *argv: str, **env: str) -> subprocess.Popen[bytes]:
        return super().start(name, "scheduler", "--partition", PARTITION, "--port", "0", *argv, **env)


@pytest.fixture
def schedulers(stack: Stack, tmp_path: Path) -> Iterator[Schedulers]:
    group = Schedulers(stack, stack.executor_address, tmp_path)
    yield group
    group.stop_all()


async def _freeze_between_transactions(proc: subprocess.Popen[bytes], db_url: str) -> None:
    """SIGSTOPs the process; on SQLite, only at a moment it holds no write lock.

    SQLite has one database-wide write lock: a process frozen inside a write transaction stops every
    other process, the new leader included, until it wakes. That is SQLite's nature, not a fencing
    bug (a standby needs MariaDB/MySQL, where a frozen transaction only holds its rows until the
    server's idle-transaction timeout). So on SQLite the pause is retried until it lands between
    two transactions, which is where a GC pause or a frozen VM most often lands anyway.
    """
    if not db_url.startswith("sqlite"):
        proc.send_signal(signal.SIGSTOP)
        return
    path = db_url.split(":///", 1)[1]
    for _ in range(200):
        proc.send_signal(signal.SIGSTOP)
        probe = sqlite3.connect(path, timeout=0.5, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:
            proc.send_signal(signal.SIGCONT)
            await asyncio.sleep(0.05)
        finally:
            probe.close()
    raise AssertionError("the old leader never paused outside a write transaction")


async def _lease(stack: Stack) -> PartitionLease | None:
    async with stack.sessions() as s:
        return await s.get(PartitionLease, PARTITION, populate_existing=True)


async def _assert_each_try_ran_once(stack: Stack, runs: list[str]) -> None:
    async with stack.sessions() as s:
        tis = (await s.execute(select(TaskInstance).where(TaskInstance.dag_id == "busy"))).scalars().all()
        history = (
            await s.execute(
                select(TaskInstanceHistory.run_id, TaskInstanceHistory.task_id, func.count())
                .where(TaskInstanceHistory.dag_id == "busy")
                .group_by(TaskInstanceHistory.run_id, TaskInstanceHistory.task_id)
            )
        ).all()
    assert len(tis) == 5 * len(runs)
    assert {(t.state, t.try_number) for t in tis} == {("success", 1)}
    assert {count for _, _, count in history} == {1} and len(history) == 5 * len(runs)


async def test_two_schedulers_never_queue_a_try_twice(stack: Stack, schedulers: Schedulers) -> None:
    # The in-process scheduler of the stack fixture and two more processes: three contenders.
    stack.write_dag(f"{PARTITION}/team/busy.py", DAG_SOURCE)
    await stack.publish()
    await stack.wait_dag("busy")
    schedulers.start("a")
    schedulers.start("b")
    runs = [await stack.trigger("busy", run_id=f"r{i}") for i in range(12)]
    for run_id in runs:
        assert (await stack.wait_run("busy", run_id, timeout=90)).state == "success"
    await _assert_each_try_ran_once(stack, runs)


async def test_standby_takes_over_within_10s_when_the_leader_dies(stack: Stack, schedulers: Schedulers) -> None:
    await stack.stop_scheduler()  # the processes below are the only contenders
    stack.write_dag(f"{PARTITION}/team/busy.py", DAG_SOURCE)
    await stack.publish()
    leader = schedulers.start("leader")
    await stack.wait_dag("busy")
    lease = await _lease(stack)
    assert lease is not None
    first_epoch = lease.epoch
    schedulers.start("standby")
    runs = [await stack.trigger_via_lease("busy", f"before{i}") for i in range(3)]
    leader.send_signal(signal.SIGKILL)
    leader.wait()
    loop = __import__("asyncio").get_running_loop()
    died = loop.time()

    async def taken_over() -> bool:
        current = await _lease(stack)
        return current is not None and current.epoch > first_epoch

    await stack.wait_for(taken_over, 10, "the standby holds the lease")
    assert loop.time() - died < 10
    runs += [await stack.trigger_via_lease("busy", f"after{i}") for i in range(3)]
    for run_id in runs:
        assert (await stack.wait_run("busy", run_id, timeout=60)).state == "success"
    await _assert_each_try_ran_once(stack, runs)


@pytest.mark.timeout(240)
async def test_a_paused_leader_cannot_write_after_losing_its_lease(stack: Stack, schedulers: Schedulers) -> None:
    await stack.stop_scheduler()
    stack.write_dag(f"{PARTITION}/team/busy.py", DAG_SOURCE)
    await stack.publish()
    old = schedulers.start("old")
    await stack.wait_dag("busy")
    lease = await _lease(stack)
    assert lease is not None
    old_epoch = lease.epoch
    await _freeze_between_transactions(old, stack.db_url)  # a long GC pause, a frozen VM
    schedulers.start("new")

    async def replaced() -> bool:
        current = await _lease(stack)
        return current is not None and current.epoch > old_epoch

    # Paused between transactions, the lease is taken once it expires (3 s). Paused inside one (MariaDB),
    # the lease row stays locked until the server ends the idle transaction (IDLE_TRANSACTION_TIMEOUT, 20 s).
    await stack.wait_for(replaced, 30 + IDLE_TRANSACTION_TIMEOUT, "the new scheduler holds the lease")
    runs = [await stack.trigger_via_lease("busy", f"r{i}") for i in range(4)]
    old.send_signal(signal.SIGCONT)  # wakes up believing it leads
    for run_id in runs:
        assert (await stack.wait_run("busy", run_id, timeout=60)).state == "success"
    await _assert_each_try_ran_once(stack, runs)
    await stack.wait_for(lambda: "lease lost" in schedulers.log("old"), 15, "the old leader noticed")
    final = await _lease(stack)
    assert final is not None and final.epoch > old_epoch

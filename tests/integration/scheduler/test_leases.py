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
from spinner.processes import is_stopped

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
        await _until_stopped(proc.pid)  # a signal is delivered later: probed before, it could still lock
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


async def _until_stopped(pid: int) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while not is_stopped(pid):
        assert asyncio.get_running_loop().time() < deadline, f"process {pid} did not stop within 10 s of SIGSTOP"
        await asyncio.sleep(0.005)


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


async def test_standby_takes_over_when_the_leader_dies(stack: Stack, schedulers: Schedulers) -> None:
    await stack.stop_scheduler()  # the processes below are the only contenders
    stack.write_dag(f"{PARTITION}/team/busy.py", DAG_SOURCE)
    await stack.publish()
    leader = schedulers.start("leader")
    await stack.wait_dag("busy", timeout=90)  # a process start and a parse, maybe on a busy machine
    lease = await _lease(stack)
    assert lease is not None
    first_epoch = lease.epoch
    schedulers.start("standby")
    runs = [await stack.trigger_via_lease("busy", f"before{i}") for i in range(3)]
    leader.send_signal(signal.SIGKILL)
    leader.wait()

    async def taken_over() -> bool:
        current = await _lease(stack)
        return current is not None and current.epoch > first_epoch

    # The 3 s lease expires and the standby takes it; how fast is `make resilience`'s to measure (a test's
    # deadline is for a loaded machine: it failed at 10 s with load 8 on two cores).
    await stack.wait_for(taken_over, 40, "the standby holds the lease")
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
    await stack.wait_dag("busy", timeout=90)
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


# --- failover in seconds, not at the lease's expiry (issue 13, item 4) --------------------------------------

# The lease is 30 s here, and a standby must hold the partition well before it could have expired: it
# recognised the dead or frozen holder. How fast that is (about 1-4 s) is measured by `make resilience`
# (docs/resilience.md), not asserted here: a timing goal in a test fails on a busy machine.
LEASE_SECONDS = "30"
BEFORE_EXPIRY = 15.0


async def _leader_and_standby(stack: Stack, schedulers: Schedulers) -> tuple[subprocess.Popen[bytes], int]:
    """A leader and a standby with a 30 s lease, the leader busy with runs."""
    await stack.stop_scheduler()
    stack.write_dag(f"{PARTITION}/team/busy.py", DAG_SOURCE)
    await stack.publish()
    leader = schedulers.start("leader", SPINNER_LEASE_SECONDS=LEASE_SECONDS)
    await stack.wait_dag("busy", timeout=90)
    lease = await _lease(stack)
    assert lease is not None
    schedulers.start("standby", SPINNER_LEASE_SECONDS=LEASE_SECONDS)
    for i in range(6):
        await stack.trigger_via_lease("busy", f"before{i}")
    return leader, lease.epoch


async def _took_over(stack: Stack, schedulers: Schedulers, epoch: int, since: float, what: str) -> float:
    loop = asyncio.get_running_loop()

    async def taken_over() -> bool:
        current = await _lease(stack)
        return current is not None and current.epoch > epoch

    try:
        await stack.wait_for(taken_over, 30, "the standby holds the lease")
    except AssertionError:
        raise AssertionError(f"{what}: no takeover; standby's log:\n{schedulers.log('standby')[-3000:]}") from None
    took = loop.time() - since
    print(f"{what}: the standby took over after {took:.2f} s")
    return took


async def test_a_standby_takes_over_at_once_from_a_leader_killed_on_its_machine(
    stack: Stack, schedulers: Schedulers
) -> None:
    leader, epoch = await _leader_and_standby(stack, schedulers)
    killed = asyncio.get_running_loop().time()
    leader.send_signal(signal.SIGKILL)
    leader.wait()
    took = await _took_over(stack, schedulers, epoch, killed, "kill -9")
    assert took < BEFORE_EXPIRY, f"takeover {took:.1f} s after kill -9 (lease {LEASE_SECONDS} s)"
    assert "is gone" in schedulers.log("standby"), schedulers.log("standby")[-2000:]
    runs = [await stack.trigger_via_lease("busy", f"after{i}") for i in range(3)]
    for run_id in [*(f"before{i}" for i in range(6)), *runs]:
        assert (await stack.wait_run("busy", run_id, timeout=60)).state == "success"
    await _assert_each_try_ran_once(stack, [*(f"before{i}" for i in range(6)), *runs])


@pytest.mark.parametrize("db_url", ["mariadb"], indirect=True)  # SQLite: a frozen writer holds the whole file
async def test_a_standby_takes_over_in_seconds_from_a_leader_frozen_inside_a_transaction(
    stack: Stack, schedulers: Schedulers
) -> None:
    leader, epoch = await _leader_and_standby(stack, schedulers)
    frozen = await _freeze_inside_a_transaction(leader, stack)
    took = await _took_over(stack, schedulers, epoch, frozen, "SIGSTOP inside a transaction")
    assert took < BEFORE_EXPIRY, f"takeover {took:.1f} s after SIGSTOP inside a transaction (lease {LEASE_SECONDS} s)"
    leader.send_signal(signal.SIGCONT)  # wakes up inside a transaction the database has ended
    await stack.wait_for(lambda: "lease lost" in schedulers.log("leader"), 30, "the old leader noticed")
    runs = [f"before{i}" for i in range(6)]
    for run_id in runs:
        assert (await stack.wait_run("busy", run_id, timeout=60)).state == "success"
    await _assert_each_try_ran_once(stack, runs)


async def _freeze_inside_a_transaction(proc: subprocess.Popen[bytes], stack: Stack) -> float:
    """SIGSTOPs the process at a moment it holds the lease row locked (inside a transaction); returns when."""
    from sqlalchemy import text

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while loop.time() < deadline:
        proc.send_signal(signal.SIGSTOP)
        stopped = loop.time()
        async with stack.sessions() as s, s.begin():
            try:
                await s.execute(
                    text("SELECT epoch FROM partition_lease WHERE `partition` = :p FOR UPDATE NOWAIT"), {"p": PARTITION}
                )
            except Exception:  # locked: the frozen leader is inside a transaction
                return stopped
        proc.send_signal(signal.SIGCONT)
        await asyncio.sleep(0.01)
    raise AssertionError("the leader was never frozen inside a transaction")

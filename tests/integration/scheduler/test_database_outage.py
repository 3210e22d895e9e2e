"""A database outage delays tries, never fails them (issue 13, the small version of `make resilience`).

The scheduler and the executor reach MariaDB through a proxy (tests/fakes/tcp_proxy.py) that the
test takes down while every task runs: their connections break and new ones are refused, as in a
restart. The tasks' commands end during the outage. Their runners' Finish gets UNAVAILABLE from
the executor (spinner/grpcserver.py) and is retried until the database is back; every try that
succeeded is recorded as a success, and no command runs twice. Before, the executor answered
UNKNOWN, the runners gave up, and the tries failed after the heartbeat timeout.

Tries that run on after the outage could not heartbeat during it: the scheduler gives them a
whole heartbeat timeout after the database is back before it judges any of them dead.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from .conftest import PARTITION, Stack

SHORT, LONG = 6, 2
TASKS = SHORT + LONG
OUTAGE = 8.0  # seconds: the short tasks' commands (3 s) end inside it, the long ones' (16 s) after it
HEARTBEAT_TIMEOUT = 6  # shorter than the outage: the long tasks' last heartbeats are older than this


def dag_source(record: Path) -> str:
    return f"""
from spinner import DAG, BashOperator, Tier
with DAG(dag_id="outage", tier=Tier.TIER1, max_active_tasks=32, default_args={{"retries": 0}}) as dag:
    for i in range({TASKS}):
        seconds = 3 if i < {SHORT} else 16
        BashOperator(task_id=f"t{{i}}", bash_command=f"echo ran >> {record}/t{{i}}; sleep {{seconds}}; echo done t{{i}}")
"""


@pytest.mark.db_proxy
@pytest.mark.scheduler_settings(heartbeat_timeout=HEARTBEAT_TIMEOUT)
@pytest.mark.parametrize("db_url", ["mariadb"], indirect=True)
async def test_tries_that_end_while_the_database_is_away_are_recorded_once_it_is_back(
    stack: Stack, tmp_path: Path
) -> None:
    assert stack.db_proxy is not None
    record = tmp_path / "executions"
    record.mkdir()
    stack.write_dag(f"{PARTITION}/team/outage.py", dag_source(record))
    await stack.publish()
    await stack.wait_dag("outage")
    run_id = await stack.trigger("outage")

    async def all_running() -> bool:
        states = await stack.states("outage", run_id)
        return len(states) == TASKS and all(s == "running" for s in states.values())

    await stack.wait_for(all_running, 60, f"all {TASKS} tasks running")
    await stack.db_proxy.down()
    try:
        await asyncio.sleep(OUTAGE)  # the fault itself lasts this long; the test waits on conditions below
    finally:
        await stack.db_proxy.up()

    run = await stack.wait_run("outage", run_id, timeout=120)
    tis = await stack.tis("outage", run_id)
    detail = {t: (ti.state, ti.try_number, ti.error) for t, ti in sorted(tis.items())}
    executions = {p.name: p.read_text().count("ran") for p in sorted(record.iterdir())}
    assert run.state == "success", (detail, executions)
    assert all(ti.state == "success" and ti.try_number == 1 for ti in tis.values()), detail
    assert executions == {f"t{i}": 1 for i in range(TASKS)}, executions
    # The runners said why they waited: the executor told them the database was away.
    logs = [p.read_text() for p in stack.home.rglob("attempt=1.log") if "dag_id=outage" in str(p)]
    assert len(logs) == TASKS, logs
    assert any("the database is unavailable" in text for text in logs), logs[:1]

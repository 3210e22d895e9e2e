"""A person's action commits while a scheduling pass is under way, and the pass goes on.

Actions (clear, mark, pause, backfill) run in their own transaction on the scheduler's event loop,
next to the pass, and ask for a full pass once they commit (`SchedulerLoop.act`). On MariaDB the
action holds the lease row, the pass waits on it, and the action's request lands while the pass
is already past its first reads. CI saw that empty the task-instance cache under the pass: a
KeyError ended the scheduling loop and the backfill's runs waited forever. The request now takes
effect at the next pass; the pass under way finishes with the rows it has.

The test makes the request at the worst moment, every time: while the pass locks the pools,
after it has decided which tries to queue and before it queues them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.scheduler import queries
from services.scheduler.engine.scheduling import SchedulingEngine

from .conftest import PARTITION, Stack

WIDE = """
from spinner import DAG, BashOperator, Tier
with DAG(dag_id="wide", tier=Tier.TIER1, max_active_tasks=64) as dag:
    fan = [BashOperator(task_id=f"t{i}", bash_command="true") for i in range(6)]
    fan >> BashOperator(task_id="join", bash_command="echo joined")
"""


def counter(stack: Stack, name: str, **attributes: str) -> int:
    points = stack.metric_points(name)
    return sum(int(p.value) for p in points if all(p.attributes.get(k) == v for k, v in attributes.items()))


async def test_a_full_pass_asked_for_during_a_pass_waits_for_the_next_one(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    engines: list[SchedulingEngine] = []
    begin_pass = SchedulingEngine.begin_pass

    def noting_begin_pass(self: SchedulingEngine) -> None:
        if self not in engines:
            engines.append(self)
        begin_pass(self)

    lock_pools = queries.lock_pools
    requests = 0

    async def lock_pools_as_an_action_commits(session: AsyncSession, names: Iterable[str]) -> dict[str, Any]:
        # What SchedulerLoop.act does the moment an action's transaction commits.
        nonlocal requests
        for engine in engines:
            engine.request_full_pass()
        requests += 1
        return await lock_pools(session, names)

    monkeypatch.setattr(SchedulingEngine, "begin_pass", noting_begin_pass)
    monkeypatch.setattr(queries, "lock_pools", lock_pools_as_an_action_commits)

    stack.write_dag(f"{PARTITION}/team/wide.py", WIDE)
    await stack.publish()
    await stack.wait_dag("wide")
    full_before = counter(stack, "spinner.scheduler.passes", kind="full")
    run_ids = [await stack.trigger("wide") for _ in range(3)]
    runs = [await stack.wait_run("wide", r, timeout=90) for r in run_ids]

    tis = {r: await stack.states("wide", r) for r in run_ids}
    assert all(run.state == "success" for run in runs), tis
    assert requests >= 2, f"the pools were locked by {requests} passes"
    assert stack.scheduler_task is not None and not stack.scheduler_task.done(), "the scheduling loop ended"
    errors = counter(stack, "spinner.scheduler.loop.errors")
    assert errors == 0, f"{errors} scheduling passes failed"
    # Each request was honoured: a full pass (every run, every try read again) followed it, but for the
    # last one's, when no run was left (an idle pass).
    full = counter(stack, "spinner.scheduler.passes", kind="full") - full_before
    assert full >= requests - 1, f"{full} full passes after {requests} requests"

"""Handing queued tries to the executor: a try whose hand-over failed is handed over again, once."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from spinner.db.models import TaskInstanceHistory

from .conftest import PARTITION, Stack

HEADER = "import datetime as dt\nfrom spinner import DAG, BashOperator, Tier\n"


@pytest.mark.executor_settings(port="free", token_secret="restart-proof")
async def test_a_try_queued_while_the_executor_is_down_runs_once_it_is_back(stack: Stack) -> None:
    stack.write_dag(
        f"{PARTITION}/team/handover.py",
        HEADER
        + 'with DAG(dag_id="handover", tier=Tier.TIER1) as dag:\n    BashOperator(task_id="t", bash_command="echo ran")\n',
    )
    await stack.publish()
    await stack.wait_dag("handover")
    await stack.stop_executor()
    run_id = await stack.trigger("handover")

    async def queued() -> bool:
        return (await stack.states("handover", run_id)).get("t") == "queued"

    await stack.wait_for(queued, 20, "the try queued")
    await asyncio.sleep(1)  # the hand-over fails: nobody listens
    await stack.start_executor()
    run = await stack.wait_run("handover", run_id, timeout=60)  # handed over again after 15 s queued
    assert run.state == "success"
    async with stack.sessions() as s:
        tries = (await s.execute(select(TaskInstanceHistory).where(TaskInstanceHistory.run_id == run_id))).scalars()
        assert [(t.try_number, t.state) for t in tries] == [(1, "success")]  # one try, run once

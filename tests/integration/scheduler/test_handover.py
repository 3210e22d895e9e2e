"""Handing queued tries to the executor: a try whose hand-over failed is handed over again, once."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import select

from spinner.db.models import TaskInstanceHistory

from .conftest import PARTITION, Stack

HEADER = "import datetime as dt\nfrom spinner import DAG, BashOperator, Tier\n"


@pytest.mark.executor_settings(port="free", token_secret="restart-proof")
async def test_a_try_queued_while_the_executor_is_down_runs_once_it_is_back(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="services.scheduler.engine.loop")
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
    await stack.wait_for(lambda: "the executor cannot take" in caplog.text, 20, "a hand-over refused: nobody listens")
    back = dt.datetime.now(dt.UTC)
    await stack.start_executor()
    run = await stack.wait_run("handover", run_id, timeout=60)
    assert run.state == "success"
    # Handed over again as soon as the executor answered, not at the resubmit sweep (15 s after it was queued).
    started = (await stack.tis("handover", run_id))["t"].start_date
    assert started is not None and started - back < dt.timedelta(seconds=6), (back, started)
    async with stack.sessions() as s:
        tries = (await s.execute(select(TaskInstanceHistory).where(TaskInstanceHistory.run_id == run_id))).scalars()
        assert [(t.try_number, t.state) for t in tries] == [(1, "success")]  # one try, run once

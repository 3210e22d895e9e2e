"""The full pass, the scheduler's safety net: a change it was never told about is still seen.

Between full passes the scheduler reads only the tries that ended lately; a full pass compares
each active run's cached rows with a summary the database computes and reads again the runs that
differ (docs/benchmarks.md, "Sensors"). An operator who fixes a task instance by hand in the
database, with an end date long past, is the change nothing else would notice.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from spinner.db.models import TaskInstance

from .conftest import PARTITION, Stack

GATED = """
from spinner import DAG, BashOperator, PythonSensor, Tier
with DAG(dag_id="gated", tier=Tier.TIER1) as dag:
    gate = PythonSensor(task_id="gate", python_callable=lambda: False, mode="reschedule",
                        poke_interval=3600, timeout=86400)
    gate >> BashOperator(task_id="after", bash_command="echo after the gate")
"""


def full_passes(stack: Stack) -> int:
    return sum(int(p.value) for p in stack.metric_points("spinner.scheduler.passes") if p.attributes["kind"] == "full")


@pytest.mark.scheduler_settings(full_pass_interval=2)
async def test_a_task_instance_changed_behind_the_schedulers_back_is_seen_at_the_next_full_pass(
    stack: Stack,
) -> None:
    stack.write_dag(f"{PARTITION}/team/gated.py", GATED)
    await stack.publish()
    await stack.wait_dag("gated")
    run_id = await stack.trigger("gated")

    async def gate_waits() -> bool:
        return (await stack.states("gated", run_id)).get("gate") == "up_for_reschedule"

    await stack.wait_for(gate_waits, 60, "the sensor's first poke to end up_for_reschedule")
    # Two full passes with nothing changed: the downstream task still waits on the gate.
    seen = full_passes(stack)
    await stack.wait_for(lambda: full_passes(stack) >= seen + 2, 30, "two more full passes")
    states = await stack.states("gated", run_id)
    assert states == {"gate": "up_for_reschedule", "after": None}, states

    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)  # outside the ended-tries window
    async with stack.sessions() as s, s.begin():
        await s.execute(
            update(TaskInstance)
            .where(TaskInstance.dag_id == "gated", TaskInstance.run_id == run_id, TaskInstance.task_id == "gate")
            .values(state="success", end_date=long_ago, reschedule_at=None)
        )
    run = await stack.wait_run("gated", run_id, timeout=60)
    tis = await stack.tis("gated", run_id)
    detail = {t: (ti.state, ti.try_number, ti.error) for t, ti in tis.items()}
    assert run.state == "success", detail
    assert tis["after"].state == "success" and tis["after"].try_number == 1, detail

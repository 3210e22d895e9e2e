"""Operators the scheduler and executor treat specially, through the real stack on SQLite and MariaDB:
EmptyOperator (ended by the scheduler, no process), branching and short-circuits (the executor skips
what the runner names), depends_on_past and wait_for_downstream."""

from __future__ import annotations

from .conftest import PARTITION, Stack

HEADER = """
import datetime as dt
from spinner import DAG, BashOperator, EmptyOperator, PythonOperator, Tier, TriggerRule
"""


async def test_empty_operator_is_ended_by_the_scheduler_without_a_process(stack: Stack) -> None:
    stack.write_dag(
        f"{PARTITION}/team/empty.py",
        HEADER
        + """
with DAG(dag_id="empty", tier=Tier.TIER1, schedule=None) as dag:
    start = EmptyOperator(task_id="start")
    work = BashOperator(task_id="work", bash_command="echo work")
    fails = BashOperator(task_id="fails", bash_command="exit 1")
    join = EmptyOperator(task_id="join", trigger_rule=TriggerRule.ALL_DONE)
    never = EmptyOperator(task_id="never")
    start >> [work, fails] >> join
    fails >> never
""",
    )
    await stack.publish()
    await stack.wait_dag("empty")
    run_id = await stack.trigger("empty")
    await stack.wait_run("empty", run_id)
    tis = await stack.tis("empty", run_id)
    states = {t: ti.state for t, ti in tis.items()}
    assert states == {
        "start": "success", "work": "success", "fails": "failed", "join": "success", "never": "upstream_failed",
    }, states  # fmt: skip
    for task_id in ("start", "join"):
        ti = tis[task_id]
        # No try was ever queued: no process, no pod, no log.
        assert ti.try_number == 0 and ti.hostname == "" and ti.start_date is not None, (task_id, ti.__dict__)
    log_root = stack.home / "logs"
    logs = [str(p) for p in log_root.rglob("*")] if log_root.exists() else []
    assert any("task_id=work" in p for p in logs), logs  # the check below looks in the right place
    assert not any("task_id=start" in p or "task_id=join" in p for p in logs), logs
    assert tis["work"].start_date >= tis["start"].end_date  # type: ignore[operator]

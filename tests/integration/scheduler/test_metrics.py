"""Scheduling delay and throughput are measured, per partition and tier, as OpenTelemetry metrics."""

from __future__ import annotations

from .conftest import PARTITION, Stack


async def test_delays_loop_and_queue_counts_are_recorded(stack: Stack) -> None:
    stack.write_dag(
        f"{PARTITION}/team/measured.py",
        "from spinner import DAG, BashOperator, Tier\n"
        "with DAG(dag_id='measured', tier=Tier.TIER1) as dag:\n"
        "    BashOperator(task_id='a', bash_command='true') >> BashOperator(task_id='b', bash_command='true')\n",
    )
    await stack.publish()
    await stack.wait_dag("measured")
    run_id = await stack.trigger("measured")
    assert (await stack.wait_run("measured", run_id)).state == "success"

    first = stack.metric_points("spinner.scheduler.delay.first_task")
    downstream = stack.metric_points("spinner.scheduler.delay.downstream")
    assert sum(p.count for p in first) >= 1 and sum(p.count for p in downstream) >= 1
    assert all(dict(p.attributes) == {"partition": PARTITION, "tier": 1} for p in first + downstream)
    assert max(p.max for p in downstream) < 30  # seconds: measured, not a timestamp
    assert sum(p.value for p in stack.metric_points("spinner.scheduler.task_instances.queued")) >= 2
    assert sum(p.count for p in stack.metric_points("spinner.scheduler.loop.duration")) > 0
    assert sum(p.count for p in stack.metric_points("spinner.executor.queued_to_running")) >= 2

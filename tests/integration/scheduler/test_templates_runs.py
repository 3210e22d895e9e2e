"""Templates through real runner processes: a template file rendered from the DAG folder, the rendered fields
stored per try through the executor, the previous successful run in the context, a missing file's error."""

from __future__ import annotations

import json

from sqlalchemy import select

from spinner.db.models import DagRun, RenderedTaskInstanceFields
from spinner.logpaths import local_log_path

from .conftest import PARTITION, Stack

DAG_FILE = """
from spinner import DAG, BashOperator, Param, PythonOperator, Tier

def report(prev_start_date_success, params, **_):
    print(f"previous success started at {prev_start_date_success}; days={params['days']!r}")

with DAG(dag_id="templated", tier=Tier.TIER1, params={"days": Param(3, type="integer", minimum=1)},
         render_template_as_native_obj=False) as dag:
    load = BashOperator(task_id="load", bash_command="load.sh", env={"DAYS": "{{ params.days }}"})
    missing = BashOperator(task_id="missing", bash_command="nope.sh")
    prev = PythonOperator(task_id="prev", python_callable=report)
"""


async def rendered(stack: Stack, run_id: str, task_id: str) -> list[tuple[int, dict[str, object]]]:
    async with stack.sessions() as s:
        q = select(RenderedTaskInstanceFields).where(
            RenderedTaskInstanceFields.run_id == run_id, RenderedTaskInstanceFields.task_id == task_id
        )
        return [(r.try_number, json.loads(r.rendered_fields)) for r in (await s.execute(q)).scalars()]


async def test_template_files_rendered_fields_and_previous_success(stack: Stack) -> None:
    stack.write_dag(f"{PARTITION}/team/templated.py", DAG_FILE)
    stack.write_dag(f"{PARTITION}/team/load.sh", "echo loading {{ ds }} for $DAYS days\n")
    await stack.publish()
    await stack.wait_dag("templated")
    first = await stack.trigger("templated", conf='{"days": 5}')
    await stack.wait_run("templated", first)
    tis = await stack.tis("templated", first)
    assert {t: ti.state for t, ti in tis.items()} == {"load": "success", "missing": "failed", "prev": "success"}
    [(try_number, fields)] = await rendered(stack, first, "load")
    assert try_number == 1
    assert str(fields["bash_command"]).startswith("echo loading 20") and fields["env"] == {"DAYS": "5"}
    error = tis["missing"].error
    assert "template file 'nope.sh' not found; tried" in error and f"{PARTITION}/team/nope.sh" in error, error
    assert await rendered(stack, first, "missing") == []  # nothing rendered: nothing stored
    assert await rendered(stack, first, "prev") == [(1, {"templates_dict": None, "op_args": [], "op_kwargs": {}})]

    # The first run failed (a task failed); mark nothing: the second sees no successful run before it.
    # A third, after a successful one, sees that one's start.
    async with stack.sessions() as s, s.begin():
        run = (await s.execute(select(DagRun).where(DagRun.run_id == first))).scalar_one()
        run.state = "success"  # as if the failure had been marked success
        started = run.start_date
    second = await stack.trigger("templated")
    await stack.wait_run("templated", second)
    text = local_log_path(stack.home / "logs", "templated", second, "prev", 1).read_text()
    assert f"previous success started at {started}" in text, text[-2000:]
    assert "days=3" in text  # the Param's default

"""What the scheduler needs of the new task arguments survives serialization: depends_on_past,
wait_for_downstream (which implies depends_on_past) and EmptyOperator's ends_in_scheduler."""

from __future__ import annotations

import datetime as dt

from spinner import DAG, BashOperator, EmptyOperator
from spinner.sdk.serialization import deserialize_dag, serialize_dag


def test_new_task_fields_round_trip() -> None:
    with DAG("past", tier=1, default_args={"depends_on_past": True, "start_date": dt.datetime(2026, 1, 1)}) as dag:
        a = EmptyOperator(task_id="a", wait_for_downstream=True, depends_on_past=False)
        b = BashOperator(task_id="b", bash_command="true", depends_on_past=False)
        c = BashOperator(task_id="c", bash_command="true")
        a >> b
    assert (a.depends_on_past, a.wait_for_downstream) == (True, True)  # Airflow: wait_for_downstream implies it
    assert not b.depends_on_past and c.depends_on_past  # default_args reach it
    data = serialize_dag(dag)
    sdag = deserialize_dag(data)
    assert sdag.tasks["a"].ends_in_scheduler and not sdag.tasks["b"].ends_in_scheduler
    assert sdag.tasks["a"].wait_for_downstream and sdag.tasks["c"].depends_on_past
    assert serialize_dag(sdag) == data


def test_serialized_dags_from_before_these_fields_still_load() -> None:
    with DAG("old", tier=1) as dag:
        BashOperator(task_id="t", bash_command="true")
    data = serialize_dag(dag)
    for t in data["tasks"]:
        for name in ("depends_on_past", "wait_for_downstream", "ends_in_scheduler"):
            del t[name]
    task = deserialize_dag(data).tasks["t"]
    assert not (task.depends_on_past or task.wait_for_downstream or task.ends_in_scheduler)

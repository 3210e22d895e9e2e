"""TriggerDagRunOperator's arguments are checked when the DAG is defined; what triggered a run round-trips."""

from __future__ import annotations

from typing import Any

import pytest

from spinner import DAG, TriggerDagRunOperator
from spinner.runner.client import NotInTask
from spinner.sdk.exceptions import DagDefinitionError
from spinner.triggering import TriggeringTask, decode, person


def test_defaults_follow_airflow() -> None:
    with DAG("nightly", tier=1):
        t = TriggerDagRunOperator(task_id="kick", trigger_dag_id="report")
    assert (t.allowed_states, t.failed_states, t.poke_interval) == (["success"], ["failed"], 60.0)
    assert not (t.wait_for_completion or t.reset_dag_run or t.skip_when_already_exists)
    assert set(t.template_fields) == {"trigger_dag_id", "trigger_run_id", "logical_date", "conf"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trigger_dag_id": ""}, "trigger_dag_id must be a DAG id"),
        ({"conf": ["a"]}, "conf must be a dict, not list"),
        ({"poke_interval": 0}, "poke_interval must be a positive number"),
        ({"allowed_states": ["done"]}, r"allowed_states \['done'\] are not run states"),
        ({"failed_states": ["success"]}, r"\['success'\] cannot be both allowed and failed states"),
        ({"logical_date": 3}, "logical_date must be a datetime or an ISO 8601 string"),
    ],
)
def test_bad_arguments_are_definition_errors(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"trigger_dag_id": "report", **kwargs}
    with pytest.raises(DagDefinitionError, match="DAG 'nightly', task 'kick': " + message), DAG("nightly", tier=1):
        TriggerDagRunOperator(task_id="kick", **args)


def test_outside_a_task_it_says_so() -> None:
    with DAG("nightly", tier=1) as dag:
        t = TriggerDagRunOperator(task_id="kick", trigger_dag_id="report")
    with pytest.raises(NotInTask, match="only available while a task runs"):
        t.execute({"dag": dag})


def test_the_triggering_task_round_trips_through_triggered_by() -> None:
    source = TriggeringTask(dag_id="nightly.v2", run_id="manual__2026-05-17T00:00:00+00:00 x", task_id="kick-it")
    assert decode(source.encode()) == source
    assert source.label == "task nightly.v2.kick-it"
    assert decode("alice") is None and decode("task:only/two") is None and decode("task:a b/c/r") is None
    # A person whose name looks like the task form cannot pose as a task.
    assert decode(person("task:nightly/kick/r1")) is None and person("alice") == "alice"

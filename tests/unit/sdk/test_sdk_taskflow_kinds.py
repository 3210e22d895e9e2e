"""@task.branch, @task.short_circuit and @task.sensor: TaskFlow functions with the operators' behaviour."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from spinner import DAG, EmptyOperator, PokeReturnValue, task
from spinner.sdk import skipping
from spinner.sdk.exceptions import DagDefinitionError, RescheduleTask
from spinner.sdk.operators.sensors.base import SensorTry
from spinner.sdk.taskflow import DecoratedBranchOperator, DecoratedSensorOperator, DecoratedShortCircuitOperator
from spinner.sdk.templating import build_context

WHEN = dt.datetime(2026, 5, 16, tzinfo=dt.UTC)  # a Saturday


@pytest.fixture(autouse=True)
def no_leftover_skips() -> Iterator[None]:
    skipping.take_requested()
    yield
    skipping.take_requested()


def context_for(dag: DAG, task_id: str) -> dict[str, Any]:
    return build_context(
        dag, dag.get_task(task_id), run_id="r", logical_date=WHEN, data_interval_start=WHEN,
        data_interval_end=WHEN + dt.timedelta(days=1), conf={}, try_number=1, run_type="manual",
    )  # fmt: skip


def test_branch_function_gets_call_arguments_and_context_and_skips_the_rest() -> None:
    @task.branch(retries=2)
    def pick(threshold: int, ds: str) -> str:
        weekday = dt.date.fromisoformat(ds).weekday()
        return "weekend" if weekday >= threshold else "weekday"

    with DAG("b", tier=1) as dag:
        chosen = pick(5)
        chosen >> [EmptyOperator(task_id="weekday"), EmptyOperator(task_id="weekend")]
    op = dag.get_task("pick")
    assert isinstance(op, DecoratedBranchOperator) and op.retries == 2
    assert op.execute(context_for(dag, "pick")) == "weekend"
    assert skipping.take_requested() == ["weekday"]


def test_short_circuit_function_skips_everything_after_a_falsy_result() -> None:
    @task.short_circuit
    def has_rows(rows: int) -> bool:
        return rows > 0

    with DAG("s", tier=1) as dag:
        gate = has_rows(0)
        load = EmptyOperator(task_id="load")
        gate >> load >> EmptyOperator(task_id="report")
    op = dag.get_task("has_rows")
    assert isinstance(op, DecoratedShortCircuitOperator)
    assert op.execute(context_for(dag, "has_rows")) is False
    assert sorted(skipping.take_requested()) == ["load", "report"]


def test_sensor_function_pokes_until_true_and_can_push_a_value() -> None:
    answers = iter([False, PokeReturnValue(is_done=True, xcom_value={"rows": 42})])

    @task.sensor(poke_interval=0.01, timeout=30)
    def landed(ds: str) -> Any:
        assert ds == "2026-05-16"
        return next(answers)

    with DAG("w", tier=1) as dag:
        landed()
    op = dag.get_task("landed")
    assert isinstance(op, DecoratedSensorOperator) and op.poke_interval == 0.01
    assert op.execute(context_for(dag, "landed")) == {"rows": 42}


def test_sensor_function_in_reschedule_mode_ends_the_process_between_pokes() -> None:
    @task.sensor(poke_interval=60, timeout=600, mode="reschedule")
    def not_yet() -> bool:
        return False

    with DAG("r", tier=1) as dag:
        not_yet()
    ctx = context_for(dag, "not_yet") | {"sensor_try": SensorTry()}
    with pytest.raises(RescheduleTask):
        dag.get_task("not_yet").execute(ctx)


def test_sensor_arguments_are_checked_at_definition() -> None:
    @task.sensor(mode="sometimes")
    def odd() -> bool:
        return True

    with DAG("bad", tier=1), pytest.raises(DagDefinitionError, match="mode"):
        odd()

"""Dynamic task mapping in DAG files: what `.partial(...).expand(...)` builds, serializes and resolves."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from spinner import DAG, BashOperator, task
from spinner.mapping import all_combinations, combination, items_of, total_length
from spinner.sdk.exceptions import DagDefinitionError
from spinner.sdk.mapping import materialize
from spinner.sdk.serialization import deserialize_dag, serialize_dag

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class FakeTI:
    """The runner's task instance as mapping uses it: a map_index and xcom_pull."""

    def __init__(self, map_index: int, xcoms: dict[str, Any] | None = None) -> None:
        self.map_index = map_index
        self.xcoms = xcoms or {}

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.xcoms.get(task_ids)


def test_instances_are_numbered_in_product_order_with_the_last_argument_fastest() -> None:
    assert all_combinations([2, 3]) == [combination([2, 3], i) for i in range(6)]
    assert [combination([2, 3], i) for i in (0, 1, 3, 5)] == [(0, 0), (0, 1), (1, 0), (1, 2)]
    assert total_length([2, 3, 4]) == 24 and total_length([3, 0]) == 0
    with pytest.raises(IndexError):
        combination([2], 2)
    assert items_of({"a": 1, "b": 2}) == [("a", 1), ("b", 2)]
    assert items_of("abc") is None and items_of(3) is None


def test_a_mapped_classic_operator_serializes_its_lengths_and_gets_its_item_at_run_time() -> None:
    with DAG("m", tier=1, start_date=START, schedule=None) as dag:
        load = BashOperator.partial(task_id="load", retries=2).expand(bash_command=["echo a", "echo {{ ds }}"])
    assert load.is_mapped and load.retries == 2
    data = serialize_dag(dag)
    (entry,) = data["tasks"]
    assert entry["expand"] == [{"name": "bash_command", "length": 2}]
    assert serialize_dag(deserialize_dag(data)) == data
    assert deserialize_dag(data).tasks["load"].is_mapped
    materialize(load, {"ti": FakeTI(1)})
    assert load.bash_command == "echo {{ ds }}"  # rendered after, like any templated value


def test_a_task_function_maps_over_literals_and_an_upstream_output_with_partial_arguments() -> None:
    with DAG("m", tier=1, start_date=START, schedule=None) as dag:

        @task
        def files() -> list[str]:
            return ["a.csv", "b.csv"]

        @task
        def copy(path: str, bucket: str, mode: str) -> str:
            return f"{bucket}/{path}/{mode}"

        @task
        def count(copied: list[str]) -> int:
            return len(copied)

        count(copy.partial(bucket="raw").expand(path=files(), mode=["fast", "safe"]))
    sdag = deserialize_dag(serialize_dag(dag))
    assert sdag.tasks["copy"].expand == (
        {"name": "path", "task_id": "files", "key": "return_value"},
        {"name": "mode", "length": 2},
    )
    assert sdag.tasks["copy"].upstream_task_ids == {"files"}  # mapping over its output makes the dependency
    assert sdag.tasks["count"].upstream_task_ids == {"copy"} and not sdag.tasks["count"].is_mapped
    operator = dag.task_dict["copy"]
    ti = FakeTI(3, {"files": ["a.csv", "b.csv"]})
    materialize(operator, {"ti": ti})  # 3 = (path 1, mode 1)
    assert operator.op_kwargs == {"bucket": "raw", "path": "b.csv", "mode": "safe"}


def test_mapping_over_an_upstream_value_that_is_not_a_list_is_a_clear_error_at_run_time() -> None:
    with DAG("m", tier=1, start_date=START, schedule=None) as dag:

        @task
        def one() -> int:
            return 1

        @task
        def use(x: int) -> int:
            return x

        use.expand(x=one())
    with pytest.raises(TypeError, match="mapped argument 'x': the XCom 'return_value' of task 'one' is int"):
        materialize(dag.task_dict["use"], {"ti": FakeTI(0, {"one": 1})})


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: BashOperator.partial(task_id="b").expand(), "needs at least one argument to map over"),
        (
            lambda: BashOperator.partial(task_id="b", bash_command="x").expand(bash_command=["y"]),
            "bash_command given to both .partial\\(\\) and .expand\\(\\)",
        ),
        (lambda: BashOperator.partial(task_id="b").expand(bash_comand=["y"]), "got 'bash_comand', which the task"),
        (lambda: BashOperator.partial(task_id="b").expand(bash_command="echo"), "not str 'echo'"),
        (lambda: BashOperator.partial(task_id="b").expand(pool=["a"]), "'pool' cannot be mapped"),
        (lambda: BashOperator.partial(bash_command="x"), "needs task_id"),
        (lambda: BashOperator(task_id="b", bash_command="x").expand(env=[{}]), "is called on .partial"),
    ],
)
def test_misused_mapping_is_an_authoring_error_that_says_what_to_do(build: Any, message: str) -> None:
    with DAG("m", tier=1, start_date=START, schedule=None), pytest.raises(DagDefinitionError, match=message):
        build()


def test_a_task_function_rejects_mapping_an_argument_it_does_not_take() -> None:
    @task
    def double(x: int) -> int:
        return 2 * x

    with DAG("m", tier=1, start_date=START, schedule=None):
        with pytest.raises(DagDefinitionError, match="got 'y', which the task does not take; it takes x"):
            double.expand(y=[1])
        with pytest.raises(DagDefinitionError, match="a mapped task with no input"):
            double.expand()

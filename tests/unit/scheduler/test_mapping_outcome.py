"""How many instances the scheduler gives a mapped task, or why none (services/scheduler/engine/mapping.py),
and how a run's cached rows name a task's instances (engine/ti_state.py)."""

from __future__ import annotations

import json
from typing import Any

from services.scheduler.engine.mapping import Inputs, Outcome, outcome
from services.scheduler.engine.ti_state import TiRow, instances
from spinner import DAG, BashOperator, task
from spinner.sdk.serialization import SerializedDAG, deserialize_dag, serialize_dag


def mapped_dag() -> SerializedDAG:
    with DAG("d", tier=1) as dag:

        @task
        def listed() -> list[int]:
            return [1, 2]

        @task
        def use(x: Any, mode: str) -> None:
            pass

        @task
        def each(value: Any) -> Any:
            return value

        use.override(task_id="literal").expand(x=["a", "b"], mode=("x", "y", "z"))
        BashOperator.partial(task_id="empty").expand(bash_command=[])
        use.expand(x=listed(), mode=["fast", "safe"])
        each.override(task_id="again").expand(value=each.expand(value=listed()))
    return deserialize_dag(serialize_dag(dag))


DAG_ = mapped_dag()


def decide(
    task_id: str, values: dict[str, Any] | None = None, counts: dict[str, int] | None = None, limit: int = 8
) -> Outcome:
    inputs = Inputs(
        {("d", "r", t, "return_value"): json.dumps(v) for t, v in (values or {}).items()},
        {("d", "r", t, "return_value"): n for t, n in (counts or {}).items()},
    )
    return outcome("d", "r", DAG_, DAG_.tasks[task_id], inputs, limit)


def test_literals_give_the_product_of_their_lengths() -> None:
    assert decide("literal").length == 6 and decide("literal").state is None
    empty = decide("empty")
    assert (empty.length, empty.state) == (0, "skipped")
    assert empty.error == "Task 'empty' mapped over nothing: 'bash_command' had no items"


def test_an_upstream_list_or_dict_gives_its_items_times_the_literals() -> None:
    assert decide("use", {"listed": [1, 2, 3]}).length == 6
    assert decide("use", {"listed": {"a": 1}}).length == 2  # a dict maps over its pairs
    assert decide("use", {"listed": []}).state == "skipped"


def test_a_mapped_upstream_counts_the_instances_that_pushed() -> None:
    assert decide("again", counts={"each": 3}).length == 3
    assert decide("again", counts={}).state == "skipped"


def test_too_long_not_a_list_and_missing_values_fail_with_what_to_do() -> None:
    long = decide("literal", limit=5)
    assert long.state == "failed" and long.length == 0
    assert long.error == (
        "Task 'literal' would expand to 6 task instances, more than scheduler.max_map_length (5); "
        "map over fewer items or raise the setting"
    )
    assert decide("literal", limit=6).length == 6
    scalar = decide("use", {"listed": "abc"})
    assert scalar.state == "failed"
    assert scalar.error == (
        "Task 'use' cannot be expanded: its argument 'x' maps over the XCom 'return_value' of task 'listed', "
        "which is str, not a list or dict"
    )
    missing = decide("use")
    assert missing.state == "failed" and missing.error.endswith("of task 'listed', which pushed no such XCom")


def test_a_tasks_rows_are_its_minus_one_row_or_its_instances_in_order() -> None:
    def row(task_id: str, map_index: int) -> TiRow:
        return TiRow("d", "r", task_id, None, 0, 0, None, "default_pool", None, map_index)

    tis = {r.key: r for r in (row("plain", -1), row("m", 2), row("m", 0), row("m", 1), row("waiting", -1))}
    assert [r.map_index for r in instances(tis, "m")] == [0, 1, 2]
    assert [r.map_index for r in instances(tis, "plain")] == [-1]
    assert instances(tis, "waiting") == [tis[("waiting", -1)]] and instances(tis, "absent") == []

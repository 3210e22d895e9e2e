"""The runner's side of a mapped task's instance: `--map-index`, its items before rendering, `ti.map_index`,
and what `xcom_pull` gives for a mapped task (docs/adr/0007-dynamic-task-mapping.md). The whole path, with
a real executor and runner processes, is in tests/integration/executor/test_mapped_instances.py."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from spinner import DAG, BashOperator, task
from spinner.runner.main import MappedInputError, materialize_instance, parse_args
from spinner.sdk.exceptions import FailNoRetry
from spinner.sdk.templating import build_context
from spinner.sdk.xcom import pulled_value
from spinner.v1 import executor_pb2

WHEN = dt.datetime(2026, 5, 17, tzinfo=dt.UTC)
BASE = ["--executor", "127.0.0.1:1", "--snapshot", "/s", "--fileloc", "p/f.py", "--dag-id", "d", "--run-id", "r",
        "--task-id", "t", "--try-number", "2"]  # fmt: skip
Item = executor_pb2.RunnerPullXComResponse.Item


def _context(dag: DAG, task_id: str, map_index: int) -> dict[str, object]:
    return build_context(dag, dag.get_task(task_id), run_id="r", logical_date=WHEN, data_interval_start=WHEN,
                         data_interval_end=WHEN, conf={}, try_number=1, run_type="manual", map_index=map_index)  # fmt: skip


def test_map_index_is_an_argument_absent_for_an_unmapped_task() -> None:
    assert parse_args(BASE).map_index == -1
    assert parse_args([*BASE, "--map-index", "7"]).map_index == 7


def test_an_instance_gets_its_own_item_before_its_fields_are_rendered() -> None:
    with DAG("m", tier=1) as dag:
        BashOperator.partial(task_id="load").expand(
            bash_command=["echo first {{ ti.map_index }}", "echo second {{ ti.map_index }} of {{ ti.task_id }}"]
        )
    context = _context(dag, "load", 1)
    load = dag.get_task("load")
    assert context["ti"].map_index == 1  # type: ignore[attr-defined]
    materialize_instance(load, context, 1)
    load.render_template_fields(context)
    assert load.bash_command == "echo second 1 of load"  # type: ignore[attr-defined]
    with DAG("u", tier=1) as plain:
        BashOperator(task_id="t", bash_command="echo {{ ti.map_index }}")
    unmapped = _context(plain, "t", -1)
    materialize_instance(plain.get_task("t"), unmapped, -1)  # nothing to put in place
    plain.get_task("t").render_template_fields(unmapped)
    assert plain.get_task("t").bash_command == "echo -1"  # type: ignore[attr-defined]


def test_a_task_functions_instances_each_get_their_combination() -> None:
    with DAG("m", tier=1) as dag:

        @task
        def copy(path: str, mode: str, dry: bool) -> str:
            return f"{path}:{mode}:{dry}"

        copy.partial(dry=True).expand(path=["a", "b"], mode=["fast", "safe", "slow"])
    got = []
    for i in range(6):
        with DAG("m", tier=1) as fresh:  # each instance runs in a process of its own, with its own task
            copy.partial(dry=True).expand(path=["a", "b"], mode=["fast", "safe", "slow"])
        operator = fresh.get_task("copy")
        materialize_instance(operator, _context(fresh, "copy", i), i)
        got.append(operator.op_kwargs)  # type: ignore[attr-defined]
    assert got == [{"dry": True, "path": p, "mode": m} for p in "ab" for m in ("fast", "safe", "slow")]
    assert dag.get_task("copy").is_mapped


def test_an_instance_that_cannot_get_its_item_fails_without_retry_saying_why() -> None:
    with DAG("m", tier=1) as dag:
        BashOperator.partial(task_id="load").expand(bash_command=["a", "b"])
        BashOperator(task_id="plain", bash_command="true")
    with pytest.raises(MappedInputError, match=r"mapped task 'load', instance 2: map_index 2 is outside 0\.\.1"):
        materialize_instance(dag.get_task("load"), _context(dag, "load", 2), 2)
    with pytest.raises(MappedInputError, match="is mapped, but this try is not one of its instances"):
        materialize_instance(dag.get_task("load"), _context(dag, "load", -1), -1)
    with pytest.raises(MappedInputError, match="the DAG file does not map it"):
        materialize_instance(dag.get_task("plain"), _context(dag, "plain", 0), 0)
    assert issubclass(MappedInputError, FailNoRetry)  # the runner's Finish says FAILED_NO_RETRY


def _items(task_id: str, *values: tuple[int, object]) -> list[Item]:
    return [Item(task_id=task_id, found=True, value_json=json.dumps(v), run_id="r", map_index=i) for i, v in values]


def test_pulling_a_mapped_task_gives_its_instances_values_in_order_and_map_indexes_pick() -> None:
    pushed = _items("m", (0, "zero"), (1, None), (3, {"three": 3}))  # instance 2 pushed nothing
    assert pulled_value(pushed, True, None) == ["zero", None, {"three": 3}]
    assert pulled_value(pushed, None, None) == ["zero", None, {"three": 3}]  # the DAG cannot say: instances do
    assert pulled_value(pushed, True, 3) == {"three": 3}
    assert pulled_value(pushed, True, 2) is None
    assert pulled_value(pushed, True, [3, 0, 2]) == [{"three": 3}, "zero", None]
    nothing = [Item(task_id="m", found=False, map_index=-1)]
    assert pulled_value(nothing, True, None) == []  # a mapped task none of whose instances pushed
    assert pulled_value(nothing, None, None) is None
    unmapped = _items("u", (-1, [1, 2]))
    assert pulled_value(unmapped, False, None) == [1, 2]  # as before: the value itself
    assert pulled_value(unmapped, False, 0) is None  # no instance 0 of an unmapped task (Airflow's rule)


def test_a_dag_callbacks_process_shares_the_runners_log_stream_as_an_unmapped_try() -> None:
    from spinner.runner import callback
    from spinner.runner.main import log_stream

    args = callback.parse_args(["--executor", "127.0.0.1:1", "--snapshot", "/s", "--fileloc", "p/f.py", "--dag-id",
                                "d", "--run-id", "r", "--kind", "deadline", "--callback-id", "7"])  # fmt: skip
    stream = log_stream(args)  # built, not started: nothing is redirected
    assert stream._log_id.map_index == -1 and stream._log_id.task_id == "callback:deadline"

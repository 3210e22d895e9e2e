"""TaskFlow at DAG-definition time: @task / @dag build tasks, dependencies from XComArgs, clear errors."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from spinner import DAG, BashOperator, PythonOperator, Tier, XComArg, dag, task
from spinner.sdk.exceptions import DagDefinitionError
from spinner.sdk.serialization import dag_hash, serialize_dag
from spinner.sdk.taskflow import DecoratedBashOperator, DecoratedPythonOperator
from spinner.sdk.templating import build_context, render_value
from spinner.sdk.xcom_arg import DagParam

WHEN = dt.datetime(2026, 5, 17, tzinfo=dt.UTC)


@task(multiple_outputs=True)
def extract() -> dict[str, Any]:
    return {"orders": [1, 2], "region": "eu"}


@task(retries=3, pool="etl")
def transform(orders: list[int], factor: int = 10) -> int:
    return sum(orders) * factor


@task
def load(total: int, ti: Any = None) -> str:
    return f"{total}"


def test_calls_create_tasks_wired_by_their_xcom_args() -> None:
    with DAG("etl", tier=Tier.TIER2) as d:
        data = extract()
        total = transform(data["orders"])
        result = load(total)
    assert isinstance(data, XComArg) and isinstance(result, XComArg)
    assert d.task_ids == ["extract", "transform", "load"]
    t = d.get_task("transform")
    assert isinstance(t, DecoratedPythonOperator)
    assert t.upstream_task_ids == {"extract"} and d.get_task("load").upstream_task_ids == {"transform"}
    assert (t.retries, t.pool, t.multiple_outputs) == (3, "etl", False)
    assert d.get_task("extract").multiple_outputs is True  # type: ignore[attr-defined]
    assert repr(t.op_args[0]) == "XComArg(task_id='extract', key='orders')"
    assert transform.function([1], factor=2) == 2  # the plain function stays testable


def test_a_dict_return_annotation_means_multiple_outputs() -> None:
    @task
    def summary() -> dict[str, int]:
        return {"a": 1}

    @task
    def plain() -> list[int]:
        return [1]

    with DAG("hints", tier=1) as d:
        summary()
        plain()
    assert d.get_task("summary").multiple_outputs is True  # type: ignore[attr-defined]
    assert d.get_task("plain").multiple_outputs is False  # type: ignore[attr-defined]


def test_override_and_a_function_used_twice_get_their_own_task_ids() -> None:
    with DAG("twice", tier=1) as d:
        a = extract()
        b = extract()
        c = extract.override(task_id="extract_us", retries=1)()
        d_ = extract.override(task_id="my__step")()
        e_ = extract.override(task_id="my__step")()
    assert [x.task_id for x in (a, b, c, d_, e_)] == ["extract", "extract__1", "extract_us", "my__step", "my__step__1"]
    assert d.get_task("extract_us").retries == 1 and d.get_task("extract").retries == 0


def test_xcom_args_in_classic_operators_make_dependencies_and_shift_both_ways() -> None:
    with DAG("mixed", tier=1) as d:
        data = extract()
        bash = BashOperator(task_id="bash", bash_command="echo hi", env={"REGION": data["region"]})
        py = PythonOperator(task_id="py", python_callable=lambda x: x, op_args=[data["orders"]])
        after = BashOperator(task_id="after", bash_command="true")
        before = BashOperator(task_id="before", bash_command="true")
        data >> after
        before >> data
        last = BashOperator(task_id="last", bash_command="true")
        [data, after] >> last
    assert bash.upstream_task_ids == {"extract"} and py.upstream_task_ids == {"extract"}
    assert after.upstream_task_ids == {"extract"} and d.get_task("extract").upstream_task_ids == {"before"}
    assert last.upstream_task_ids == {"extract", "after"}


def test_xcom_args_resolve_when_rendered() -> None:
    with DAG("render", tier=1, params={"factor": 2}) as d:
        t = BashOperator(task_id="t", bash_command="echo")

    class Pulls:  # what a running try's ti answers; here without an executor
        def xcom_pull(self, task_ids: str, key: str) -> Any:
            return {"from": task_ids, "key": key}

    ctx = build_context(d, t, run_id="r", logical_date=WHEN, data_interval_start=WHEN, data_interval_end=WHEN,
                        conf={"factor": 5}, try_number=1, run_type="manual")  # fmt: skip
    ctx["ti"] = Pulls()
    value = render_value({"a": [XComArg(t, "k")], "p": DagParam("factor", 2)}, ctx)
    assert value == {"a": [{"from": "t", "key": "k"}], "p": 5}


def test_task_bash_returns_the_command() -> None:
    @task.bash(env={"X": "1"})
    def say(word: str) -> str:
        return f"echo {word} {{{{ run_id }}}}"

    with DAG("bashy", tier=1) as d:
        say("hello")
    op = d.get_task("say")
    assert isinstance(op, DecoratedBashOperator) and op.env == {"X": "1"}
    ctx = build_context(d, op, run_id="run-7", logical_date=WHEN, data_interval_start=WHEN, data_interval_end=WHEN,
                        conf={}, try_number=1, run_type="manual")  # fmt: skip
    op.render_template_fields(ctx)
    assert op.execute(ctx) == "hello run-7"

    @task.bash
    def nothing() -> None:
        return None

    with DAG("bashy2", tier=1) as d2:
        nothing()
    with pytest.raises(TypeError, match="must return the command to run"):
        d2.get_task("nothing").execute(ctx)


def test_python_task_gets_context_values_it_names_without_clashing_with_its_arguments() -> None:
    @task
    def uses(value: int, params: Any = None, ds: str = "") -> str:
        return f"{value} {params} {ds}"

    with DAG("ctx", tier=1, params={"p": 1}) as d:
        uses(3)
        uses(4, params="given")
    ctx = build_context(d, d.get_task("uses"), run_id="r", logical_date=WHEN, data_interval_start=WHEN,
                        data_interval_end=WHEN, conf={}, try_number=1, run_type="manual")  # fmt: skip
    assert d.get_task("uses").execute(ctx) == "3 {'p': 1} 2026-05-17"
    assert d.get_task("uses__1").execute(ctx) == "4 given 2026-05-17"


def test_dag_decorator_builds_a_dag_whose_parameters_are_params() -> None:
    @dag(tier=Tier.TIER2, schedule="@daily", start_date=WHEN, tags=["etl"])
    def nightly(factor: int = 10, region: str = "eu") -> None:
        """Nightly orders."""
        transform(extract()["orders"], factor)

    built = nightly(region="us")
    assert isinstance(built, DAG) and built.dag_id == "nightly"
    assert built.params == {"factor": 10, "region": "us"} and built.description == "Nightly orders."
    assert built.tags == ["etl"] and built.task_ids == ["extract", "transform"]
    assert repr(built.get_task("transform").op_args[1]) == "DagParam('factor')"
    data = serialize_dag(built)
    assert dag_hash(data) == dag_hash(serialize_dag(nightly(region="us")))  # stable across parses


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: extract(), "task function 'extract' was called outside a DAG"),
        (lambda: transform(1, 2, 3), "DAG 'bad', task 'transform': too many positional arguments"),
        (
            lambda: task(retires=3)(lambda: None)(),
            r"DAG 'bad'.*, task '<lambda>': .*unknown .*argument.*'retires' \(did you mean retries\?\)",
        ),
        (lambda: dag(tier=1)(lambda *a: None)(), r"cannot take \*a"),
        (lambda: dag(tier=1)(lambda x: None)(), "parameter 'x' needs a default"),
    ],
)
def test_misuse_is_a_dag_definition_error(build: Any, message: str) -> None:
    with pytest.raises(DagDefinitionError, match=message):
        if message.startswith("DAG 'bad'"):
            with DAG("bad", tier=1):
                build()
        else:
            build()


def test_an_xcom_arg_of_another_dag_is_a_dag_definition_error() -> None:
    with DAG("first", tier=1):
        data = extract()
    with DAG("second", tier=1), pytest.raises(DagDefinitionError, match="task 'extract' of DAG 'first'"):
        BashOperator(task_id="uses", bash_command=data)  # type: ignore[arg-type]
    with DAG("third", tier=1), pytest.raises(DagDefinitionError, match=r"DAG 'third', task 'load'.*DAG 'first'"):
        load(data)
    with DAG("fourth", tier=1):
        other = BashOperator(task_id="other", bash_command="true")
    with pytest.raises(DagDefinitionError, match="different DAGs"):
        data >> other
    with pytest.raises(TypeError, match="cannot be unpacked"):
        _a, _b = data

"""Defining DAGs: what authors write, and the clear errors they get when it is wrong."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from spinner import DAG, BashOperator, PythonOperator, Tier, TriggerRule
from spinner.sdk.exceptions import DagDefinitionError


def noop() -> None:
    return None


def test_dependencies_with_shift_operators_and_lists() -> None:
    with DAG("deps", tier=Tier.TIER1) as dag:
        a, b, c, d, e = (BashOperator(task_id=x, bash_command="true") for x in "abcde")
        a >> [b, c]
        [b, c] >> d
        e << d
    assert a.downstream_task_ids == {"b", "c"}
    assert d.upstream_task_ids == {"b", "c"}
    assert e.upstream_task_ids == {"d"}
    assert [t.task_id for t in dag.roots] == ["a"]
    order = [t.task_id for t in dag.topological_sort()]
    assert order.index("a") < order.index("b") < order.index("d") < order.index("e")


def test_cycle_names_the_dag_and_tasks() -> None:
    with DAG("loopy", tier=1) as dag:
        a = BashOperator(task_id="a", bash_command="true")
        b = BashOperator(task_id="b", bash_command="true")
        a >> b >> a
    with pytest.raises(DagDefinitionError, match=r"DAG 'loopy': cycle between tasks .*a.*b"):
        dag.validate()


def test_duplicate_task_id() -> None:
    with DAG("dup", tier=1), pytest.raises(DagDefinitionError, match="DAG 'dup': duplicate task id 'x'"):
        BashOperator(task_id="x", bash_command="true")
        BashOperator(task_id="x", bash_command="true")


def test_missing_or_bad_tier() -> None:
    with pytest.raises(DagDefinitionError, match="DAG 'untiered': tier is required"):
        DAG("untiered")
    with pytest.raises(DagDefinitionError, match="tier must be 1, 2 or 3"):
        DAG("t4", tier=4)
    assert DAG("t2", tier=2).tier is Tier.TIER2


def test_unknown_trigger_rule_names_dag_and_task() -> None:
    with DAG("rules", tier=1), pytest.raises(DagDefinitionError, match="DAG 'rules', task 'x': unknown trigger rule"):
        BashOperator(task_id="x", bash_command="true", trigger_rule="sometimes")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"gpu": 1}, "unknown executor_config key"),
        ({"request_memory": "lots"}, "is not a quantity"),
        ({"env": {"A": 1}}, "env must map strings to strings"),
        ("big", "must be a dict"),
    ],
)
def test_bad_executor_config(config: Any, message: str) -> None:
    with DAG("cfg", tier=1), pytest.raises(DagDefinitionError, match=message):
        BashOperator(task_id="x", bash_command="true", executor_config=config)


def test_good_executor_config_is_kept() -> None:
    with DAG("cfg", tier=1):
        t = BashOperator(
            task_id="x", bash_command="true",
            executor_config={"request_memory": "512Mi", "limit_cpu": "500m", "env": {"A": "1"}},
        )  # fmt: skip
    assert t.executor_config["request_memory"] == "512Mi"


@pytest.mark.parametrize("schedule", ["every day", "@sometimes", "61 * * * *", dt.timedelta(0), 5])
def test_bad_schedule(schedule: Any) -> None:
    with pytest.raises(DagDefinitionError, match="DAG 'sched'"):
        DAG("sched", tier=1, schedule=schedule)


def test_default_args_apply_unless_given() -> None:
    with DAG("defaults", tier=1, default_args={"retries": 3, "retry_delay": dt.timedelta(seconds=7)}):
        a = BashOperator(task_id="a", bash_command="true")
        b = BashOperator(task_id="b", bash_command="true", retries=0)
    assert (a.retries, a.retry_delay) == (3, dt.timedelta(seconds=7))
    assert (b.retries, b.retry_delay) == (0, dt.timedelta(seconds=7))


def test_tasks_of_two_dags_cannot_be_linked() -> None:
    with DAG("one", tier=1):
        a = BashOperator(task_id="a", bash_command="true")
    with DAG("two", tier=1):
        b = BashOperator(task_id="b", bash_command="true")
    with pytest.raises(DagDefinitionError, match="different DAGs"):
        a >> b


def test_nested_context_managers_and_explicit_dag() -> None:
    outer = DAG("outer", tier=1)
    with outer:
        with DAG("inner", tier=1) as inner:
            t_inner = PythonOperator(task_id="t", python_callable=noop)
        t_outer = PythonOperator(task_id="t", python_callable=noop)
    explicit = PythonOperator(task_id="e", python_callable=noop, dag=inner)
    assert t_inner.dag is inner and t_outer.dag is outer and explicit.dag is inner


def test_naive_start_date_is_utc_and_trigger_rule_enum_accepted() -> None:
    with DAG("dates", tier=1, start_date=dt.datetime(2026, 1, 1)) as dag:
        t = BashOperator(task_id="t", bash_command="true", trigger_rule=TriggerRule.ONE_FAILED)
    assert dag.start_date == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert t.trigger_rule == "one_failed"


def test_access_control_permissions_are_checked() -> None:
    with pytest.raises(DagDefinitionError, match="unknown permission"):
        DAG("acl", tier=1, access_control={"ops": {"can_dag_delete"}})
    dag = DAG("acl", tier=1, access_control={"ops": ["can_dag_read"]})
    assert dag.access_control == {"ops": frozenset({"can_dag_read"})}


def test_retry_delay_backoff() -> None:
    with DAG("backoff", tier=1):
        t = BashOperator(
            task_id="t", bash_command="true", retry_delay=dt.timedelta(seconds=10),
            retry_exponential_backoff=True, max_retry_delay=dt.timedelta(seconds=25),
        )  # fmt: skip
    assert [t.retry_delay_for(n).total_seconds() for n in (1, 2, 3)] == [10, 20, 25]


def test_default_args_reach_an_operators_own_parameters_and_start_date() -> None:
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    with DAG("d", tier=1, default_args={"start_date": start, "bash_command": "echo default", "retries": 2}) as dag:
        a = BashOperator(task_id="a")
        b = BashOperator(task_id="b", bash_command="echo mine", retries=0)
    dag.validate()
    assert dag.start_date == start
    assert (a.bash_command, a.retries, a.start_date) == ("echo default", 2, start)
    assert (b.bash_command, b.retries) == ("echo mine", 0)


def test_unknown_default_args_key_is_an_error_naming_it() -> None:
    with DAG("d", tier=1, default_args={"retires": 2}, fileloc="/repo/dags/team/report.py") as dag:
        BashOperator(task_id="a", bash_command="true")
    with pytest.raises(DagDefinitionError, match=r"DAG 'd' in report.py: unknown default_args key\(s\) \['retires'\]"):
        dag.validate()


def test_unknown_operator_keyword_is_an_error_naming_dag_task_file_and_a_fix() -> None:
    with DAG("d", tier=1, fileloc="/repo/dags/team/report.py"):
        with pytest.raises(
            DagDefinitionError,
            match=r"DAG 'd' in report.py, task 'a': unknown BashOperator argument\(s\) 'retires' \(did you mean retries\?\)",
        ):
            BashOperator(task_id="a", bash_command="true", retires=2)
        with pytest.raises(DagDefinitionError, match=r"'provide_context' \(not needed: a callable gets"):
            PythonOperator(task_id="p", python_callable=noop, provide_context=True)


def test_unknown_dag_keyword_is_an_error_with_the_airflow_3_name() -> None:
    with pytest.raises(
        DagDefinitionError,
        match=r"DAG 'd' in test_sdk_dag.py: unknown DAG argument\(s\) 'schedule_interval' \(Airflow 3 and Spinner call it schedule=\)",
    ):
        DAG("d", tier=1, schedule_interval="@daily")
    with pytest.raises(DagDefinitionError, match=r"'max_active_run' \(did you mean max_active_runs\?\)"):
        DAG("d", tier=1, max_active_run=2)

"""TaskGroup, chain() and cross_downstream(): how authors structure a large DAG, and their misuse."""

from __future__ import annotations

import datetime as dt

import pytest

from spinner import DAG, BashOperator, TaskGroup, chain, cross_downstream
from spinner.sdk.exceptions import DagDefinitionError
from spinner.sdk.serialization import deserialize_dag, serialize_dag


def bash(task_id: str, **kwargs: object) -> BashOperator:
    return BashOperator(task_id=task_id, bash_command="true", **kwargs)  # type: ignore[arg-type]


def test_nested_groups_prefix_ids_and_link_as_one() -> None:
    with DAG("etl", tier=1) as dag:
        start = bash("start")
        with TaskGroup("extract") as extract:
            users = bash("users")
            with TaskGroup("events") as events:
                clicks, views = bash("clicks"), bash("views")
                clicks >> views
            users >> events
        report = bash("report")
        start >> extract >> report
    dag.validate()
    assert {users.task_id, clicks.task_id, views.task_id} == {
        "extract.users",
        "extract.events.clicks",
        "extract.events.views",
    }
    assert events.group_id == "extract.events"
    assert dag.get_task("extract.users").upstream_task_ids == {"start"}
    # the group's roots follow start; its leaves come before report
    assert dag.get_task("report").upstream_task_ids == {"extract.events.views"}
    assert clicks.upstream_task_ids == {"extract.users"}
    assert [t.task_id for t in extract.roots] == ["extract.users"]


def test_group_default_args_override_the_dags_and_prefix_can_be_off() -> None:
    with DAG("d", tier=1, default_args={"retries": 1, "pool": "default_pool"}) as dag:
        with TaskGroup("loads", prefix_group_id=False, default_args={"retries": 4, "pool": "warehouse"}):
            inner = bash("load_users")
            own = bash("load_orders", retries=0)
        outer = bash("after")
    assert (inner.task_id, inner.retries, inner.pool) == ("load_users", 4, "warehouse")
    assert own.retries == 0
    assert (outer.retries, outer.pool) == (1, "default_pool")
    assert dag.task_ids == ["load_users", "load_orders", "after"]


def test_groups_survive_serialization() -> None:
    with DAG("d", tier=1, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) as dag:
        with TaskGroup("g"):
            bash("a")
        bash("b")
    data = serialize_dag(dag)
    again = deserialize_dag(data)
    assert again.tasks["g.a"].task_group == "g"
    assert again.tasks["b"].task_group is None
    assert serialize_dag(again) == data


def test_cycle_through_a_group_names_the_tasks() -> None:
    with DAG("loop", tier=1) as dag:
        with TaskGroup("g") as g:
            bash("a")
        b = bash("b")
        g >> b >> g
    with pytest.raises(DagDefinitionError, match=r"DAG 'loop': cycle between tasks .*g\.a.*b"):
        dag.validate()


def test_group_misuse_is_a_clear_error() -> None:
    with pytest.raises(DagDefinitionError, match="inside a DAG"):
        TaskGroup("orphan")
    with DAG("d", tier=1):
        TaskGroup("g")
        with pytest.raises(DagDefinitionError, match="duplicate task group id 'g'"):
            TaskGroup("g")
        empty = TaskGroup("empty")
        with pytest.raises(DagDefinitionError, match="'empty' has no tasks"):
            empty >> bash("x")
        with pytest.raises(DagDefinitionError, match=r"task group id 'a\.b'"):
            TaskGroup("a.b")


def test_chain_and_cross_downstream() -> None:
    with DAG("d", tier=1) as dag:
        a, b, c, d, e, f = (bash(x) for x in "abcdef")
        chain(a, [b, c], [d, e], f)
        x, y, z, w = (bash(n) for n in ("x", "y", "z", "w"))
        cross_downstream([x, y], [z, w])
    dag.validate()
    assert b.upstream_task_ids == {"a"} and c.upstream_task_ids == {"a"}
    assert d.upstream_task_ids == {"b"} and e.upstream_task_ids == {"c"}
    assert f.upstream_task_ids == {"d", "e"}
    assert z.upstream_task_ids == {"x", "y"} and w.upstream_task_ids == {"x", "y"}
    with DAG("bad", tier=1), pytest.raises(DagDefinitionError, match="same length, got 2 and 1"):
        chain([bash("p"), bash("q")], [bash("r")])


def test_chain_with_groups() -> None:
    with DAG("d", tier=1) as dag:
        first = bash("first")
        with TaskGroup("g") as g:
            bash("one") >> bash("two")
        last = bash("last")
        chain(first, g, last)
    dag.validate()
    assert dag.get_task("g.one").upstream_task_ids == {"first"}
    assert last.upstream_task_ids == {"g.two"}

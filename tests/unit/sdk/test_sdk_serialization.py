"""A DAG survives the trip to JSON and back with every field, and loads from files safely."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest

from spinner import DAG, BashOperator, PythonOperator, Tier
from spinner.sdk.loader import dag_import_path, extra_sys_path, load_dags_from_file
from spinner.sdk.serialization import dag_hash, deserialize_dag, serialize_dag


def compute(x: int) -> int:
    return x


def full_dag() -> DAG:
    with DAG(
        "everything", tier=Tier.TIER2, schedule="*/15 * * * *", start_date=dt.datetime(2026, 2, 3, 4, 5, tzinfo=dt.UTC),
        catchup=True, default_args={"retries": 2, "retry_delay": dt.timedelta(seconds=30)},
        access_control={"ads": {"can_dag_read", "can_dag_edit"}, "viewers": {"can_dag_read"}},
        max_active_runs=3, max_active_tasks=7, tags=["a", "b"], owner="ads-team", description="all fields",
        params={"limit": 10, "when": dt.timedelta(hours=1)}, dagrun_timeout=dt.timedelta(hours=2), fileloc="/x/y.py",
    ) as dag:  # fmt: skip
        a = BashOperator(
            task_id="a", bash_command="echo {{ ds }}", env={"K": "V"}, retries=5,
            retry_exponential_backoff=True, max_retry_delay=dt.timedelta(minutes=3),
            execution_timeout=dt.timedelta(seconds=90), trigger_rule="all_done",
            executor_config={"request_memory": "1Gi", "env": {"X": "1"}}, owner="someone", params={"p": 1},
            priority_weight=9, pool="big", doc="docs here",
        )  # fmt: skip
        b = PythonOperator(task_id="b", python_callable=compute, op_kwargs={"x": 1})
        a >> b
    return dag


def test_round_trip_keeps_every_field() -> None:
    dag = full_dag()
    data = serialize_dag(dag)
    json.dumps(data)  # JSON-able as is
    back = deserialize_dag(json.loads(json.dumps(data)))
    assert serialize_dag(back) == data
    for name in ("dag_id", "tier", "schedule", "start_date", "catchup", "max_active_runs", "max_active_tasks",
                 "tags", "owner", "description", "dagrun_timeout", "fileloc", "default_args", "params"):  # fmt: skip
        assert getattr(back, name) == getattr(dag, name), name
    assert back.access_control == dag.access_control
    a, orig = back.tasks["a"], dag.task_dict["a"]
    for name in ("task_id", "retries", "retry_delay", "retry_exponential_backoff", "max_retry_delay",
                 "execution_timeout", "trigger_rule", "executor_config", "owner", "params", "priority_weight",
                 "pool", "doc", "upstream_task_ids", "downstream_task_ids"):  # fmt: skip
        assert getattr(a, name) == getattr(orig, name), name
    assert a.operator == "BashOperator" and a.templates["bash_command"] == "echo {{ ds }}"
    assert back.tasks["b"].callable_name and back.tasks["b"].callable_name.endswith("compute")
    assert a.retry_delay_for(3) == orig.retry_delay_for(3)
    assert back.timetable.periodic


def test_hash_ignores_key_order_and_sees_changes() -> None:
    data = serialize_dag(full_dag())
    reordered = json.loads(json.dumps(data, sort_keys=True))
    assert dag_hash(reordered) == dag_hash(data)
    data["tasks"][0]["retries"] = 6
    assert dag_hash(data) != dag_hash(reordered)


def test_timedelta_schedule_round_trips() -> None:
    dag = DAG("td", tier=1, schedule=dt.timedelta(minutes=5))
    assert deserialize_dag(serialize_dag(dag)).schedule == dt.timedelta(minutes=5)


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def test_files_with_the_same_name_in_two_folders_load_separately(tmp_path: Path) -> None:
    src = "from spinner import DAG\ndag = DAG('{name}', tier=1)\n"
    a = write(tmp_path / "a" / "same.py", src.format(name="from_a"))
    b = write(tmp_path / "b" / "same.py", src.format(name="from_b"))
    assert [d.dag_id for d in load_dags_from_file(a)] == ["from_a"]
    assert [d.dag_id for d in load_dags_from_file(b)] == ["from_b"]
    assert load_dags_from_file(a)[0].fileloc == str(a.resolve())


def test_syntax_error_propagates(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.py", "def oops(:\n")
    with pytest.raises(SyntaxError):
        load_dags_from_file(bad)


def test_plugins_are_importable(tmp_path: Path) -> None:
    write(tmp_path / "plugins" / "helpers.py", "OWNER = 'plugged'\n")
    dag_file = write(
        tmp_path / "spinner_tier_1_0" / "t" / "uses_plugin.py",
        "from helpers import OWNER\nfrom spinner import DAG\ndag = DAG('plugged', tier=1, owner=OWNER)\n",
    )
    with extra_sys_path(dag_import_path(tmp_path)):
        (dag,) = load_dags_from_file(dag_file)
    assert dag.owner == "plugged"

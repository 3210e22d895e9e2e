"""What a task's XComs must be (JSON, within the size limit), and how a return value becomes XComs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from spinner import DAG, BashOperator, PythonOperator
from spinner.runner.client import NotInTask
from spinner.sdk.templating import build_context
from spinner.sdk.xcom import RuntimeTaskInstance, XComError, encode, push_result

WHEN = dt.datetime(2026, 5, 17, tzinfo=dt.UTC)


def test_values_must_be_json_and_within_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    assert encode("k", {"a": [1, 2.5, None, True]}, "here") == '{"a":[1,2.5,null,true]}'
    with pytest.raises(XComError, match=r"here: XCom 'k' is not JSON-serializable \(set"):
        encode("k", {1, 2}, "here")
    with pytest.raises(XComError, match="not JSON-serializable"):
        encode("k", float("nan"), "here")
    monkeypatch.setenv("SPINNER_XCOM_MAX_BYTES", "10")
    with pytest.raises(XComError, match="XCom 'big' is 13 bytes of JSON, more than the limit of 10 bytes"):
        encode("big", "x" * 11, "here")
    monkeypatch.delenv("SPINNER_XCOM_MAX_BYTES")
    encode("default", "x" * 60_000, "here")
    with pytest.raises(XComError, match="more than the limit of 65536 bytes"):
        encode("default", "x" * 70_000, "here")


def test_ti_is_a_runtime_task_instance_that_needs_a_running_task() -> None:
    with DAG("ctx", tier=1) as d:
        t = BashOperator(task_id="t", bash_command="true")
    ctx = build_context(d, t, run_id="r", logical_date=WHEN, data_interval_start=WHEN, data_interval_end=WHEN,
                        conf={}, try_number=2, run_type="manual")  # fmt: skip
    ti = ctx["ti"]
    assert isinstance(ti, RuntimeTaskInstance) and ctx["task_instance"] is ti
    assert (ti.dag_id, ti.task_id, ti.run_id, ti.try_number, ti.map_index) == ("ctx", "t", "r", 2, -1)
    with pytest.raises(NotInTask, match="only available while a task runs"):
        ti.xcom_pull(task_ids="t")


class Recorder(RuntimeTaskInstance):
    """Records pushes instead of sending them to an executor."""

    def __init__(self) -> None:
        super().__init__("d", "t", "r", 1)
        self.pushed: list[tuple[str, Any]] = []

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed.append((key, value))


def test_return_values_become_xcoms_by_airflows_rules() -> None:
    with DAG("ret", tier=1):
        plain = PythonOperator(task_id="plain", python_callable=lambda: 1)
        off = PythonOperator(task_id="off", python_callable=lambda: 1, do_xcom_push=False)
        many = PythonOperator(task_id="many", python_callable=lambda: 1)
    many.multiple_outputs = True  # type: ignore[attr-defined]
    ti = Recorder()
    push_result(plain, ti, {"a": 1})
    push_result(plain, ti, None)
    push_result(off, ti, "not pushed")
    push_result(many, ti, {"a": 1, "b": [2]})
    assert ti.pushed == [("return_value", {"a": 1}), ("a", 1), ("b", [2]), ("return_value", {"a": 1, "b": [2]})]
    with pytest.raises(XComError, match="multiple_outputs is set, so it must return a dict, not list"):
        push_result(many, ti, [1])
    with pytest.raises(XComError, match="keys must be strings"):
        push_result(many, ti, {1: "x"})


def test_do_xcom_push_comes_from_default_args() -> None:
    with DAG("defaults", tier=1, default_args={"do_xcom_push": False}):
        t = BashOperator(task_id="t", bash_command="true")
    assert t.do_xcom_push is False

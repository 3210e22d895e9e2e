"""Running tasks the way the runner does: templates rendered, context passed, commands executed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jinja2
import pytest

from spinner import DAG, BashOperator, PythonOperator, SkipTask
from spinner.sdk.templating import build_context

WHEN = dt.datetime(2026, 5, 17, 6, 30, tzinfo=dt.UTC)


def context_for(dag: DAG, task: Any, conf: dict[str, Any] | None = None) -> dict[str, Any]:
    return build_context(
        dag, task, run_id="manual__x", logical_date=WHEN, data_interval_start=WHEN - dt.timedelta(days=1),
        data_interval_end=WHEN, conf=conf or {}, try_number=1, run_type="manual",
    )  # fmt: skip


def test_bash_command_is_templated_and_runs(capsys: pytest.CaptureFixture[str]) -> None:
    with DAG("tpl", tier=1, params={"greeting": "hi", "n": 1}) as dag:
        t = BashOperator(
            task_id="t",
            bash_command="echo '{{ params.greeting }} {{ ds }} {{ ds_nodash }} {{ run_id }} {{ data_interval_start }}'",
        )
    ctx = context_for(dag, t, conf={"greeting": "hello", "other": 2})
    t.render_template_fields(ctx)
    assert t.bash_command == f"echo 'hello 2026-05-17 20260517 manual__x {WHEN - dt.timedelta(days=1)}'"
    assert t.execute(ctx) == f"hello 2026-05-17 20260517 manual__x {WHEN - dt.timedelta(days=1)}"
    assert "hello 2026-05-17" in capsys.readouterr().out


def test_undefined_template_variable_is_an_error() -> None:
    with DAG("typo", tier=1) as dag:
        t = BashOperator(task_id="t", bash_command="echo {{ dss }}")
    with pytest.raises(jinja2.UndefinedError, match="dss"):
        t.render_template_fields(context_for(dag, t))


def test_failing_and_skipping_commands() -> None:
    with DAG("codes", tier=1) as dag:
        bad = BashOperator(task_id="bad", bash_command="echo oops; exit 3")
        skip = BashOperator(task_id="skip", bash_command="exit 99")
    with pytest.raises(RuntimeError, match="non-zero exit code 3"):
        bad.execute(context_for(dag, bad))
    with pytest.raises(SkipTask):
        skip.execute(context_for(dag, skip))


def test_python_callable_gets_the_context_names_it_asks_for() -> None:
    seen: dict[str, Any] = {}

    def fn(x: int, ds: str, ti: Any, **rest: Any) -> int:
        seen.update(ds=ds, task_id=ti.task_id, has_params="params" in rest)
        return x * 2

    def only_ds(ds: str) -> str:
        return ds

    with DAG("py", tier=1) as dag:
        a = PythonOperator(task_id="a", python_callable=fn, op_kwargs={"x": 21})
        b = PythonOperator(task_id="b", python_callable=only_ds)
    assert a.execute(context_for(dag, a)) == 42
    assert seen == {"ds": "2026-05-17", "task_id": "a", "has_params": True}
    assert b.execute(context_for(dag, b)) == "2026-05-17"


def test_op_kwargs_are_templated() -> None:
    with DAG("pyt", tier=1) as dag:
        t = PythonOperator(task_id="t", python_callable=lambda day: day, op_kwargs={"day": "{{ ds }}"})
    ctx = context_for(dag, t)
    t.render_template_fields(ctx)
    assert t.execute(ctx) == "2026-05-17"

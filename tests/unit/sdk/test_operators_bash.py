"""BashOperator's env, append_env, cwd and skip_on_exit_code, as Airflow 3 has them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from spinner import DAG, BashOperator, SkipTask
from spinner.sdk.exceptions import DagDefinitionError
from spinner.sdk.templating import build_context

WHEN = dt.datetime(2026, 5, 17, 6, 30, tzinfo=dt.UTC)


def run(dag: DAG, task: BashOperator) -> Any:
    ctx = build_context(
        dag, task, run_id="manual__x", logical_date=WHEN, data_interval_start=WHEN, data_interval_end=WHEN,
        conf={}, try_number=1, run_type="manual",
    )  # fmt: skip
    task.render_template_fields(ctx)
    return task.execute(ctx)


def test_env_replaces_the_environment_unless_append_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_RUNNER", "outer")
    with DAG("env", tier=1) as dag:
        only = BashOperator(task_id="only", bash_command='echo "${FROM_RUNNER:-unset} $MINE"', env={"MINE": "m"})
        both = BashOperator(
            task_id="both", bash_command='echo "${FROM_RUNNER:-unset} $MINE"', env={"MINE": "m"}, append_env=True
        )
        inherit = BashOperator(task_id="inherit", bash_command='echo "${FROM_RUNNER:-unset}"')
    assert run(dag, only) == "unset m"
    assert run(dag, both) == "outer m"
    assert run(dag, inherit) == "outer"


def test_env_is_templated_and_the_run_is_in_context_variables() -> None:
    with DAG("envtpl", tier=1) as dag:
        t = BashOperator(
            task_id="t", bash_command='echo "$DAY $AIRFLOW_CTX_DAG_ID $AIRFLOW_CTX_TASK_ID"', env={"DAY": "{{ ds }}"}
        )
    assert run(dag, t) == "2026-05-17 envtpl t"


def test_cwd_is_where_the_command_runs_and_defaults_to_a_temporary_directory(tmp_path: Path) -> None:
    with DAG("cwd", tier=1) as dag:
        here = BashOperator(task_id="here", bash_command="pwd", cwd=str(tmp_path))
        tmp = BashOperator(task_id="tmp", bash_command="pwd")
        missing = BashOperator(task_id="missing", bash_command="pwd", cwd=str(tmp_path / "nope"))
    assert run(dag, here) == str(tmp_path)
    where = run(dag, tmp)
    assert "spinner-bash-" in where and not Path(where).exists()  # removed afterwards
    with pytest.raises(FileNotFoundError, match="Can not find the cwd"):
        run(dag, missing)


@pytest.mark.parametrize(
    ("codes", "exit_code", "skips"),
    [(99, 99, True), (99, 1, False), (3, 3, True), ([3, 4], 4, True), ([3, 4], 99, False), (None, 99, False)],
)
def test_skip_on_exit_code(codes: Any, exit_code: int, skips: bool) -> None:
    with DAG("codes", tier=1) as dag:
        t = BashOperator(task_id="t", bash_command=f"exit {exit_code}", skip_on_exit_code=codes)
    if skips:
        with pytest.raises(SkipTask, match=f"exit code {exit_code}"):
            run(dag, t)
    else:
        with pytest.raises(RuntimeError, match=f"non-zero exit code {exit_code}"):
            run(dag, t)


def test_a_bad_skip_on_exit_code_is_a_definition_error() -> None:
    with pytest.raises(DagDefinitionError, match="DAG 'bad', task 't': skip_on_exit_code"), DAG("bad", tier=1):
        BashOperator(task_id="t", bash_command="true", skip_on_exit_code="99")  # type: ignore[arg-type]

"""Templates: Airflow's context names and macros, template files, the DAG's Jinja options, rendered fields."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jinja2
import pytest

from spinner import DAG, BashOperator, PythonOperator
from spinner.sdk.context import PreviousSuccess
from spinner.sdk.operators.base import BaseOperator
from spinner.sdk.rendering import TemplateRenderError, dag_environment, rendered_fields
from spinner.sdk.templating import build_context

UTC = dt.UTC
WHEN = dt.datetime(2026, 5, 17, tzinfo=UTC)


def context_for(
    dag: DAG, task: Any, *, run_type: str = "scheduled", previous: PreviousSuccess | None = None, **kw: Any
) -> dict[str, Any]:
    return build_context(
        dag, task, run_id="scheduled__x", logical_date=WHEN, data_interval_start=WHEN,
        data_interval_end=WHEN + dt.timedelta(days=1), conf=kw.get("conf", {}), try_number=1,
        run_type=run_type, previous=previous,
    )  # fmt: skip


def render(dag: DAG, task: BaseOperator, root: Path | None = None, **kw: Any) -> None:
    task.render_template_fields(context_for(dag, task, **kw), dag_environment(dag, root))


def test_airflow_context_names_and_macros() -> None:
    with DAG("ctx", tier=1, schedule="@daily", start_date=WHEN) as dag:
        t = BashOperator(
            task_id="t",
            bash_command=(
                "{{ prev_ds }} {{ prev_ds_nodash }} {{ next_ds }} {{ next_ds_nodash }} "
                "{{ execution_date == logical_date }} {{ ts_nodash_with_tz }} "
                "{{ macros.ds_add(ds, 7) }} {{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%y') }} "
                "{{ (macros.datetime(2026, 1, 2) + macros.timedelta(days=1)).day }} "
                "{{ macros.uuid.UUID(int=0) }} {{ macros.random() < 1 }} {{ macros.time.time() > 0 }} "
                "{{ data_interval_start.day }}-{{ data_interval_end.day }}"
            ),
        )
    render(dag, t)
    assert t.bash_command == (
        "2026-05-16 20260516 2026-05-18 20260518 True 20260517T000000+0000 "
        "2026-05-24 17/05/26 3 00000000-0000-0000-0000-000000000000 True True 17-18"
    )


def test_a_manual_run_is_its_own_prev_and_next() -> None:
    with DAG("manual", tier=1, schedule="@daily", start_date=WHEN) as dag:
        t = BashOperator(task_id="t", bash_command="{{ prev_ds }} {{ next_ds }}")
    render(dag, t, run_type="manual")
    assert t.bash_command == "2026-05-17 2026-05-17"


def test_previous_successful_run_reaches_templates() -> None:
    with DAG("prev", tier=1, schedule="@daily", start_date=WHEN) as dag:
        t = BashOperator(
            task_id="t",
            bash_command=(
                "{{ prev_data_interval_start_success }}|{{ prev_data_interval_end_success }}|"
                "{{ prev_start_date_success }}|{{ prev_execution_date_success }}"
            ),
        )
        first = BashOperator(task_id="first", bash_command="{{ prev_data_interval_start_success is none }}")
    day = dt.timedelta(days=1)
    prev = PreviousSuccess(
        logical_date=WHEN - day, data_interval_start=WHEN - day, data_interval_end=WHEN, start_date=WHEN + day / 24
    )
    render(dag, t, previous=prev)
    assert t.bash_command == f"{WHEN - day}|{WHEN}|{WHEN + day / 24}|{WHEN - day}"
    render(dag, first)
    assert first.bash_command == "True"


def test_user_defined_macros_filters_and_native_rendering() -> None:
    def shout(value: str) -> str:
        return value.upper() + "!"

    with DAG(
        "native",
        tier=1,
        params={"n": 3, "names": ["a", "b"]},
        user_defined_macros={"team": "ads", "double": lambda x: 2 * x},
        user_defined_filters={"shout": shout},
        render_template_as_native_obj=True,
    ) as dag:
        t = PythonOperator(
            task_id="t",
            python_callable=lambda n, names, label: None,
            op_kwargs={"n": "{{ double(params.n) }}", "names": "{{ params.names }}", "label": "{{ team | shout }}"},
        )
    render(dag, t)
    assert t.op_kwargs == {"n": 6, "names": ["a", "b"], "label": "ADS!"}
    with DAG("text", tier=1, params={"n": 3}) as plain:
        u = PythonOperator(task_id="u", python_callable=print, op_kwargs={"n": "{{ params.n }}"})
    render(plain, u)
    assert u.op_kwargs == {"n": "3"}


def test_a_template_file_is_read_from_the_dag_folder_and_the_searchpath(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    (dags / "team" / "sql").mkdir(parents=True)
    (dags / "shared").mkdir()
    (dags / "team" / "load.sh").write_text("echo loading {{ ds }} for {{ params.table }}\n")
    (dags / "team" / "sql" / "report.sql").write_text("SELECT * FROM t WHERE day = '{{ ds }}'")
    (dags / "shared" / "common.sh").write_text("echo common {{ ds_nodash }}")
    with DAG(
        "files", tier=1, params={"table": "spend"}, template_searchpath=["../shared"],
        fileloc=str(dags / "team" / "files.py"),
    ) as dag:  # fmt: skip
        local = BashOperator(task_id="local", bash_command="load.sh")
        shared = BashOperator(task_id="shared", bash_command="common.sh")
        inline = BashOperator(task_id="inline", bash_command="echo {{ ds }}")

    class SqlOperator(BaseOperator):
        template_fields = ("sql",)
        template_ext = (".sql",)

        def __init__(self, task_id: str, sql: str, **kwargs: Any) -> None:
            super().__init__(task_id, **kwargs)
            self.sql = sql

    with dag:
        sql = SqlOperator(task_id="sql", sql="sql/report.sql")
    for task in (local, shared, inline, sql):
        render(dag, task, dags)
    assert local.bash_command == "echo loading 2026-05-17 for spend\n"
    assert shared.bash_command == "echo common 20260517"
    assert inline.bash_command == "echo 2026-05-17"
    assert sql.sql == "SELECT * FROM t WHERE day = '2026-05-17'"


def test_a_missing_template_file_names_the_paths_tried(tmp_path: Path) -> None:
    (tmp_path / "extra").mkdir()
    with DAG("missing", tier=1, template_searchpath="extra", fileloc=str(tmp_path / "d.py")) as dag:
        t = BashOperator(task_id="t", bash_command="nope.sh")
    with pytest.raises(TemplateRenderError) as e:
        render(dag, t, tmp_path)
    message = str(e.value)
    assert "DAG 'missing', task 't', field 'bash_command'" in message
    assert f"{tmp_path / 'nope.sh'}" in message and f"{tmp_path / 'extra' / 'nope.sh'}" in message


def test_a_template_file_outside_the_snapshot_is_refused(tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot"
    (snapshot / "team").mkdir(parents=True)
    (tmp_path / "secret.sh").write_text("echo secret")
    (snapshot / "team" / "link.sh").symlink_to(tmp_path / "secret.sh")
    with DAG("escape", tier=1, fileloc=str(snapshot / "team" / "d.py")) as dag:
        up = BashOperator(task_id="up", bash_command="../../secret.sh")
        absolute = BashOperator(task_id="absolute", bash_command=str(tmp_path / "secret.sh"))
        link = BashOperator(task_id="link", bash_command="link.sh")
    for task in (up, absolute, link):
        with pytest.raises(TemplateRenderError, match="outside the DAG snapshot"):
            render(dag, task, snapshot)
    with DAG("escape2", tier=1, template_searchpath="/", fileloc=str(snapshot / "team" / "d.py")) as dag2:
        t = BashOperator(task_id="t", bash_command="etc/passwd.sh")
    with pytest.raises(TemplateRenderError, match="outside the DAG snapshot"):
        render(dag2, t, snapshot)


def test_template_fields_and_ext_can_be_overridden_per_operator() -> None:
    class QuietBash(BashOperator):
        template_fields = ("bash_command",)
        template_ext = ()

    with DAG("override", tier=1) as dag:
        t = QuietBash(task_id="t", bash_command="echo {{ ds }} run.sh", env={"X": "{{ ds }}"})
        u = BashOperator(task_id="u", bash_command="echo {{ ds }}.sh")
    u.template_ext = ()  # an instance override, as in Airflow
    render(dag, t)
    render(dag, u)
    assert t.bash_command == "echo 2026-05-17 run.sh"
    assert t.env == {"X": "{{ ds }}"}  # not a templated field of this operator
    assert u.bash_command == "echo 2026-05-17.sh"


def test_undefined_names_still_raise_undefined_error_naming_the_field() -> None:
    with DAG("typo", tier=1) as dag:
        t = BashOperator(task_id="t", bash_command="echo {{ dss }}")
    with pytest.raises(jinja2.UndefinedError, match=r"task 't', field 'bash_command'.*'dss' is undefined"):
        render(dag, t)


def test_rendered_fields_are_json_and_cut_at_a_size() -> None:
    with DAG("big", tier=1) as dag:
        t = BashOperator(task_id="t", bash_command="echo " + "x" * 100, env={"A": "{{ ds }}"})
    render(dag, t)
    assert rendered_fields(t) == {"bash_command": "echo " + "x" * 100, "env": {"A": "2026-05-17"}, "cwd": None}
    cut = rendered_fields(t, limit=20)
    assert cut["bash_command"].startswith("Truncated: the rendered value has 107 characters")
    assert cut["bash_command"].endswith("\necho xxxxxxxxxxxxxxx")


def test_rendered_fields_hide_values_under_sensitive_keys() -> None:
    with DAG("secretive", tier=1) as dag:
        t = BashOperator(
            task_id="t", bash_command="echo $DB_PASSWORD",
            env={"DB_PASSWORD": "{{ params.pw }}", "API_TOKEN": "x", "REGION": "eu"}, params={"pw": "hunter2"},
        )  # fmt: skip
    render(dag, t)
    assert t.env == {"DB_PASSWORD": "hunter2", "API_TOKEN": "x", "REGION": "eu"}  # the task gets the real values
    assert rendered_fields(t)["env"] == {"DB_PASSWORD": "***", "API_TOKEN": "***", "REGION": "eu"}


def test_python_operator_templates_exts_read_templates_dict_files(tmp_path: Path) -> None:
    (tmp_path / "q.sql").write_text("SELECT '{{ ds }}'")
    with DAG("py_files", tier=1, fileloc=str(tmp_path / "d.py")) as dag:
        t = PythonOperator(
            task_id="t", python_callable=print, templates_dict={"query": "q.sql"}, templates_exts=[".sql"]
        )
    render(dag, t, tmp_path)
    assert t.templates_dict == {"query": "SELECT '2026-05-17'"}

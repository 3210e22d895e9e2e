"""Params: JSON Schema validated run arguments with defaults, in templates and in serialized DAGs."""

from __future__ import annotations

import datetime as dt

import pytest

from spinner import DAG, BashOperator, Param
from spinner.sdk.exceptions import DagDefinitionError
from spinner.sdk.params import ParamValidationError, validate_conf
from spinner.sdk.serialization import deserialize_dag, serialize_dag
from spinner.sdk.templating import build_context

WHEN = dt.datetime(2026, 5, 17, tzinfo=dt.UTC)


def report_dag() -> DAG:
    with DAG(
        "report",
        tier=1,
        params={
            "days": Param(7, type="integer", minimum=1, maximum=31, description="How many days back"),
            "region": Param("eu", enum=["eu", "us"], title="Region"),
            "email": Param(type="string", format="email"),  # required: no default
            "note": "plain values stay plain",
        },
    ) as dag:
        BashOperator(task_id="t", bash_command="echo {{ params.days }} {{ params.region }} {{ params.note }}")
    return dag


def test_conf_is_validated_and_defaults_fill_missing_values() -> None:
    dag = report_dag()
    values = validate_conf(dag.params, {"email": "a@example.com", "extra": 1})
    assert values == {
        "days": 7,
        "region": "eu",
        "email": "a@example.com",
        "note": "plain values stay plain",
        "extra": 1,
    }
    assert validate_conf(dag.params, {"email": "a@example.com", "days": 30})["days"] == 30


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"email": "a@example.com", "days": 0}, "param 'days': 0 is less than the minimum of 1"),
        ({"email": "a@example.com", "days": "7"}, "param 'days': '7' is not of type 'integer'"),
        ({"email": "a@example.com", "region": "asia"}, "param 'region': 'asia' is not one of ['eu', 'us']"),
        ({}, "param 'email' is required: it has no default and no value was given"),
        ({"email": "not an email"}, "param 'email': 'not an email' is not a 'email'"),
    ],
)
def test_a_bad_conf_names_the_param_and_why(conf: dict[str, object], message: str) -> None:
    with pytest.raises(ParamValidationError) as e:
        validate_conf(report_dag().params, conf)
    assert str(e.value) == message


def test_a_default_that_breaks_its_own_schema_is_a_definition_error() -> None:
    with pytest.raises(DagDefinitionError, match=r"DAG 'bad': the default of param 'n': 0 is less than the minimum"):
        DAG("bad", tier=1, params={"n": Param(0, type="integer", minimum=1)})
    with pytest.raises(DagDefinitionError, match="param 'when' must be a JSON value"):
        DAG("dated", tier=1, params={"when": Param(WHEN, type="string")})
    with pytest.raises(ValueError, match="invalid JSON schema"):
        Param(1, type="integr")
    with DAG("task_level", tier=1), pytest.raises(DagDefinitionError, match="task 't'"):
        BashOperator(task_id="t", bash_command="x", params={"n": Param("a", type="integer")})


def test_templates_see_values_and_conf_overrides_them() -> None:
    dag = report_dag()
    task = dag.get_task("t")
    ctx = build_context(
        dag, task, run_id="r", logical_date=WHEN, data_interval_start=WHEN, data_interval_end=WHEN,
        conf={"days": 3, "email": "a@example.com"}, try_number=1, run_type="manual",
    )  # fmt: skip
    assert ctx["params"] == {"days": 3, "region": "eu", "note": "plain values stay plain", "email": "a@example.com"}
    task.render_template_fields(ctx)
    assert task.bash_command == "echo 3 eu plain values stay plain"  # type: ignore[attr-defined]


def test_params_survive_serialization_with_their_schema() -> None:
    data = serialize_dag(report_dag())
    assert data["params"]["days"] == {
        "__type": "param",
        "default": 7,
        "has_default": True,
        "description": "How many days back",
        "schema": {"type": "integer", "minimum": 1, "maximum": 31, "description": "How many days back"},
    }
    back = deserialize_dag(data)
    assert back.params["days"] == Param(7, type="integer", minimum=1, maximum=31, description="How many days back")
    assert not back.params["email"].has_value
    assert serialize_dag(back) == data
    with pytest.raises(ParamValidationError, match="param 'days'"):
        validate_conf(back.params, {"days": 99, "email": "a@example.com"})


def test_a_scheduled_dag_may_not_have_params_without_defaults() -> None:
    with pytest.raises(DagDefinitionError, match=r"DAG 'nightly': param\(s\) email have no default"):
        DAG("nightly", tier=1, schedule="@daily", params={"email": Param(type="string"), "n": Param(1)})
    DAG("manual_only", tier=1, schedule=None, params={"email": Param(type="string")})

"""Variable, Connection and BaseHook outside the platform: URIs, environment overrides, templates, parse time."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from spinner import BaseHook, Connection, Variable
from spinner.runner.client import NotInTask
from spinner.runner.masking import SecretsMasker, is_sensitive, masker, redact
from spinner.sdk.connections import ConnectionNotFound
from spinner.sdk.loader import load_dags_from_file
from spinner.sdk.templating import make_env, render_value
from spinner.sdk.varconn_context import varconn_context


def test_a_uri_gives_the_fields_and_get_uri_gives_it_back() -> None:
    c = Connection(conn_id="db", uri="postgresql://us%40er:p%40ss%2Fw0rd@db.example.com:5432/analytics?sslmode=require")
    assert (c.conn_type, c.host, c.port, c.schema) == ("postgres", "db.example.com", 5432, "analytics")
    assert (c.login, c.password) == ("us@er", "p@ss/w0rd")
    assert c.extra_dejson == {"sslmode": "require"}
    again = Connection(uri=c.get_uri())
    assert again.to_dict() | {"conn_id": "db"} == c.to_dict()


def test_nested_extra_travels_as___extra___and_types_with_underscores_as_dashes() -> None:
    c = Connection(conn_id="x", conn_type="google_cloud", host="h", extra={"scopes": ["a", "b"], "n": 1})
    uri = c.get_uri()
    assert uri.startswith("google-cloud://h/?__extra__=")
    parsed = Connection(uri=uri)
    assert parsed.conn_type == "google_cloud" and parsed.extra_dejson == {"scopes": ["a", "b"], "n": 1}


def test_connection_refuses_a_uri_with_fields_and_a_bad_port() -> None:
    with pytest.raises(ValueError, match="either a uri or its fields"):
        Connection(uri="http://h", host="x")
    with pytest.raises(ValueError, match="port"):
        Connection(uri="http://h:notaport/")
    with pytest.raises(ValueError, match="not a connection URI"):
        Connection(uri="just-text")
    assert "secret" not in repr(Connection(conn_id="c", conn_type="http", host="h", password="secret"))


def test_environment_overrides_variables_with_json_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINNER_VAR_REPORT_CONFIG", json.dumps({"region": "eu", "days": 7}))
    monkeypatch.setenv("SPINNER_VAR_ENV", "prod")
    assert Variable.get("env") == "prod"
    assert Variable.get("report_config", deserialize_json=True) == {"region": "eu", "days": 7}
    with pytest.raises(NotInTask, match="only available while a task runs"):
        Variable.get("missing", default_var="d")  # outside a task nothing else answers


def test_environment_overrides_connections_as_uri_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINNER_CONN_WAREHOUSE", "mysql://etl:hunter2-pw@wh.internal:3306/sales")
    monkeypatch.setenv(
        "SPINNER_CONN_API",
        json.dumps({"conn_type": "http", "host": "api.example.com", "extra": {"api_key": "k-123456"}}),
    )
    wh = BaseHook.get_connection("warehouse")
    assert (wh.conn_id, wh.conn_type, wh.host, wh.port, wh.schema, wh.login) == (
        "warehouse", "mysql", "wh.internal", 3306, "sales", "etl",
    )  # fmt: skip
    api = BaseHook.get_connection("api")
    assert api.host == "api.example.com" and api.extra_dejson == {"api_key": "k-123456"}
    # Read connections' secrets are masked in this process's log from now on.
    assert redact("pw hunter2-pw, key k-123456, uri " + wh.get_uri()) == "pw ***, key ***, uri ***"


def test_templates_read_var_and_conn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINNER_VAR_BUCKET", "reports-eu")
    monkeypatch.setenv("SPINNER_VAR_LIMITS", '{"rows": 500}')
    monkeypatch.setenv("SPINNER_CONN_WAREHOUSE", "mysql://etl:pw-secret-1@wh.internal:3306/sales")
    ctx = varconn_context()
    text = "{{ var.value.bucket }} {{ var.json.limits.rows }} {{ conn.warehouse.host }}:{{ conn.warehouse.port }}"
    assert render_value(text, ctx) == "reports-eu 500 wh.internal:3306"
    assert render_value("{{ var.value.get('bucket', 'x') }} {{ conn.get('warehouse').login }}", ctx) == "reports-eu etl"
    assert "pw-secret-1" not in redact(render_value("{{ conn.warehouse.password }}", ctx))
    with pytest.raises(NotInTask, match="only available while a task runs"):  # no override, no executor
        make_env().from_string("{{ var.value.nope }}").render(**ctx)


def test_a_connection_outside_a_task_is_a_clear_error() -> None:
    with pytest.raises(NotInTask, match="only available while a task runs"):
        BaseHook.get_connection("nope")  # outside a task: no executor to ask
    assert str(ConnectionNotFound("The conn_id `x` isn't defined")) == "The conn_id `x` isn't defined"


DAG_FILE = """
from spinner import DAG, BashOperator, Tier, {what}
import datetime as dt

value = {call}
with DAG("reads_at_parse_time", tier=Tier.TIER2, schedule=None, start_date=dt.datetime(2026, 1, 1)) as dag:
    BashOperator(task_id="t", bash_command="echo hi")
"""


def _write(tmp_path: Path, what: str, call: str) -> Path:
    path = tmp_path / "dag.py"
    path.write_text(textwrap.dedent(DAG_FILE.format(what=what, call=call)))
    return path


def test_reading_a_connection_at_parse_time_is_refused_with_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPINNER_CONN_DB", "postgres://h/d")  # even with an override: a DAG's shape must not use it
    with pytest.raises(NotInTask, match=r"get_connection\('db'\) at DAG parse time: connections are only available"):
        load_dags_from_file(_write(tmp_path, "BaseHook", "BaseHook.get_connection('db')"))


def test_variable_get_at_parse_time_reads_only_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(NotInTask, match=r"Variable.get\('env'\) at DAG parse time.*SPINNER_VAR_ENV"):
        load_dags_from_file(_write(tmp_path, "Variable", "Variable.get('env', default_var='dev')"))
    monkeypatch.setenv("SPINNER_VAR_ENV", "prod")
    (dag,) = load_dags_from_file(_write(tmp_path, "Variable", "Variable.get('env')"))
    assert dag.dag_id == "reads_at_parse_time"


def test_secret_looking_names_and_the_masker() -> None:
    assert all(is_sensitive(k) for k in ("db_password", "API_KEY", "slack_token", "aws_secret", "private_key_pem"))
    assert not any(is_sensitive(k) for k in ("bucket", "region", "report_days"))
    m = SecretsMasker()
    assert m.redact("nothing yet") == "nothing yet"
    m.add("abc")  # too short to mask without mangling the log
    m.add("s3cr3t/value")
    m.add("s3cr3t/value-longer")
    assert m.redact("a s3cr3t/value-longer b s3cr3t%2Fvalue c abc") == "a *** b *** c abc"
    m.add_value({"nested": ["tok-987654", 123456789]})
    assert m.redact("tok-987654 123456789") == "*** ***"
    assert masker() is masker()


def test_lines_without_a_secret_pass_through_byte_for_byte() -> None:
    m = SecretsMasker()
    m.add("hunter2-secret")
    raw = b"\xff\xfe binary \xc3\xa9 line\n"
    assert m.redact_bytes(raw) is raw
    assert m.redact_bytes(b"\xff pw=hunter2-secret\n") == b"\xff pw=***\n"

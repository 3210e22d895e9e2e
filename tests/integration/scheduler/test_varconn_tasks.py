"""Real runners read variables and connections through the executor, on the local backend and in pods (the
Kubernetes double), never see the Fernet key, and their logs show *** for the secrets."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from spinner.db import varconn
from spinner.db.varconn import ConnectionFields
from spinner.fernet import SecretBox
from spinner.logpaths import local_log_path

from .conftest import PARTITION, Stack

DAG_SOURCE = """
import os
from spinner import DAG, BaseHook, BashOperator, PythonOperator, Tier, Variable

def use():
    assert "SPINNER_FERNET_KEY" not in os.environ, "the runner must not see the Fernet key"
    token = Variable.get("api_token")
    db = BaseHook.get_connection("warehouse")
    print(f"token {token} region {Variable.get('region')} db {db.host}:{db.port} as {db.login} pw {db.password}")
    assert Variable.get("nope", default_var="fallback") == "fallback"
    return db.schema

with DAG(dag_id="reads_varconn", tier=Tier.TIER1) as dag:
    PythonOperator(task_id="use", python_callable=use) >> BashOperator(
        task_id="bash",
        bash_command='test -z "$SPINNER_FERNET_KEY" && echo "bash {{ var.value.api_token }} {{ conn.warehouse.password }} {{ var.json.limits.rows }}"',
    )
"""

NOW = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)


async def _run(stack: Stack) -> dict[str, str | None]:
    box = SecretBox(os.environ["SPINNER_FERNET_KEY"])  # what the stack's executor reads (tests/conftest.py)
    async with stack.sessions() as s, s.begin():
        for key, value in (("api_token", "tok-abcdef-123"), ("region", "eu-west-1"), ("limits", '{"rows": 7}')):
            await varconn.set_variable(s, box, key, value, description="", now=NOW, by="test")
        fields = ConnectionFields(conn_id="warehouse", conn_type="postgres", host="wh", port=5432, login="etl",
                                  password="pw-warehouse-9", schema="sales")  # fmt: skip
        await varconn.set_connection(s, box, fields, now=NOW, by="test")
    stack.write_dag(f"{PARTITION}/team/reads_varconn.py", DAG_SOURCE)
    await stack.publish()
    await stack.wait_dag("reads_varconn")
    run_id = await stack.trigger("reads_varconn", run_id="r1")
    run = await stack.wait_run("reads_varconn", run_id, timeout=90)
    states = await stack.states("reads_varconn", run_id)
    assert run.state == "success", states
    return states


async def test_a_local_runner_reads_them_and_its_log_masks_the_secrets(stack: Stack) -> None:
    await _run(stack)
    use = local_log_path(stack.home / "logs", "reads_varconn", "r1", "use", 1).read_text()
    bash = local_log_path(stack.home / "logs", "reads_varconn", "r1", "bash", 1).read_text()
    assert "token *** region eu-west-1 db wh:5432 as etl pw ***" in use, use
    assert "bash *** *** 7" in bash, bash
    assert "tok-abcdef" not in use + bash and "pw-warehouse" not in use + bash


@pytest.mark.executor_settings(backend="kubernetes", k8s_namespace="spinner", k8s_pending_timeout=30)
async def test_a_runner_in_a_pod_reads_them_through_the_executor(stack: Stack) -> None:
    assert set((await _run(stack)).values()) == {"success"}

"""Authoring basics on real processes, SQLite and MariaDB: default_args reach every operator's own
parameters, and a default_args key that no task takes is an import error naming it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.harness import Spinner, standalone_on

pytestmark = pytest.mark.e2e

DEFAULTS_DAG = """
import datetime as dt
from spinner import DAG, BashOperator, Tier

with DAG("defaults_reach_operators", tier=Tier.TIER2,
         default_args={"start_date": dt.datetime(2026, 1, 1), "bash_command": "echo from-default-args",
                       "retries": 1}) as dag:
    BashOperator(task_id="uses_default") >> BashOperator(task_id="own", bash_command="echo own-command")
"""

TYPO_DAG = """
from spinner import DAG, BashOperator, Tier

with DAG("typo_in_default_args", tier=Tier.TIER2, default_args={"retires": 3}) as dag:
    BashOperator(task_id="a", bash_command="true")
"""


@pytest.fixture(scope="module", params=["sqlite", "mariadb"])
def spinner(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spinner]:
    files = {
        "spinner_tier_2_0/basics/defaults.py": DEFAULTS_DAG,
        "spinner_tier_2_0/basics/typo.py": TYPO_DAG,
    }
    yield from standalone_on(request.param, tmp_path_factory.mktemp(request.param), extra_files=files)


def test_default_args_fill_operator_parameters(spinner: Spinner) -> None:
    result = spinner.run_dag("defaults_reach_operators")
    assert result["run"]["state"] == "success", result
    run_id = result["run"]["run_id"]
    assert "from-default-args" in spinner.task_log("defaults_reach_operators", run_id, "uses_default")
    assert "own-command" in spinner.task_log("defaults_reach_operators", run_id, "own")


def test_unknown_default_args_key_is_an_import_error(spinner: Spinner) -> None:
    import time

    deadline = time.monotonic() + 60
    text = ""
    while time.monotonic() < deadline:
        text = str(spinner.api("/import-errors"))
        if "typo.py" in text:
            break
        time.sleep(0.3)
    assert "typo.py" in text and "retires" in text and "unknown default_args key" in text, text
    assert spinner.get("/api/v1/dags/typo_in_default_args").status_code == 404

"""Authoring basics on real processes, SQLite and MariaDB: default_args reach every operator's own
parameters, and a default_args key that no task takes is an import error naming it."""

from __future__ import annotations

import pytest

from tests.e2e.harness import Spinner

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


E2E_FILES = {
    "spinner_tier_2_0/basics/defaults.py": DEFAULTS_DAG,
    "spinner_tier_2_0/basics/typo.py": TYPO_DAG,
}


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


def test_task_groups_run_and_show_as_rows_of_the_grid(spinner: Spinner) -> None:
    """examples/dags/spinner_tier_2_0/marketing/campaign_rollup.py: nested groups, chain, cross_downstream."""
    result = spinner.run_dag("marketing_campaign_rollup")
    states = spinner.states(result)
    assert result["run"]["state"] == "success", states
    assert set(states) >= {"ingest.google.download", "ingest.tiktok.stage", "quality.currencies", "publish"}
    assert set(states.values()) == {"success"}, states
    run_id = result["run"]["run_id"]
    # the ordered checks ran one after another, the reports after the last check
    tis = result["tasks"]
    assert tis["quality.row_counts"]["end_date"] <= tis["quality.no_negative_spend"]["start_date"]
    assert tis["quality.currencies"]["end_date"] <= tis["report_by_network"]["start_date"]
    assert "downloading meta spend" in spinner.task_log("marketing_campaign_rollup", run_id, "ingest.meta.download")

    page = spinner.get("/dags/marketing_campaign_rollup")
    assert page.status_code == 200, page.text
    html = page.text
    for group in ("ingest", "ingest.google", "ingest.meta", "ingest.tiktok", "quality"):
        assert f'data-group="{group}"' in html, group
    assert 'data-group-state="success"' in html
    # tasks of a group follow its header row
    assert html.index('data-group="ingest.google"') < html.index("ingest.google.download · ")


def test_taskflow_sensor_short_circuit_and_branch(spinner: Spinner) -> None:
    """examples/dags/spinner_tier_2_0/shop/refund_review.py: @task.sensor, @task.short_circuit, @task.branch."""
    result = spinner.run_dag("shop_refund_review")
    states = spinner.states(result)
    assert result["run"]["state"] == "success", states
    assert states["manual_review"] == "success" and states["auto_approve"] == "skipped", states
    assert states["notify"] == "success", states
    run_id = result["run"]["run_id"]
    assert "refund total 264.25 against threshold 100.00" in spinner.task_log("shop_refund_review", run_id, "route")
    xcoms = spinner.api(f"/dags/shop_refund_review/runs/{run_id}/tasks/export_complete/xcom")["xcoms"]
    assert [x["key"] for x in xcoms] == ["return_value"], xcoms
    # a small total is approved without a person: the other branch runs
    small = spinner.run_dag("shop_refund_review", conf={"review_threshold": 1000.0})
    assert spinner.states(small)["auto_approve"] == "success"
    assert spinner.states(small)["manual_review"] == "skipped"

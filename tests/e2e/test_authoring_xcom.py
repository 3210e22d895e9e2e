"""XCom and TaskFlow on real processes, SQLite and MariaDB: the example DAGs' values flow between
tasks that each run in their own process, they are visible over REST, and a too-large XCom fails
its task with a message naming the key and the size."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.harness import Spinner

pytestmark = pytest.mark.e2e

TOO_LARGE_DAG = """
from spinner import DAG, Tier, task

with DAG("xcom_too_large", tier=Tier.TIER2) as dag:

    @task
    def big() -> str:
        return "x" * 100_000

    @task
    def never(value: str) -> int:
        return len(value)

    never(big())
"""


E2E_FILES = {"spinner_tier_2_0/xcom_tests/too_large.py": TOO_LARGE_DAG}


def xcoms(spinner: Spinner, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    body = spinner.api(f"/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/xcom")
    return {x["key"]: x["value"] for x in body["xcoms"]}


def test_taskflow_pipeline_passes_values_through_xcom(spinner: Spinner) -> None:
    """examples/dags/spinner_tier_2_0/shop/orders_etl.py, with a conf overriding a @dag param."""
    result = spinner.run_dag("shop_orders_etl", conf={"min_amount": 20})
    assert result["run"]["state"] == "success", result
    assert set(spinner.states(result).values()) == {"success"}, result
    run_id = result["run"]["run_id"]
    extracted = xcoms(spinner, "shop_orders_etl", run_id, "extract")
    assert len(extracted["orders"]) == 5 and set(extracted) == {"orders", "exported_for", "return_value"}
    # min_amount=20 from the run's conf: the 15.50 and 8.75 orders are left out. Its `-> dict[...]`
    # annotation means multiple_outputs (Airflow's rule): each country is an XCom of its own too.
    totals = {"DE": 430.25, "NL": 42.0}
    assert xcoms(spinner, "shop_orders_etl", run_id, "transform") == {"return_value": totals, **totals}
    assert xcoms(spinner, "shop_orders_etl", run_id, "load") == {"return_value": "2 countries, 472.25 EUR"}
    assert xcoms(spinner, "shop_orders_etl", run_id, "count_orders") == {"return_value": 5}
    announced = f"run {run_id}: 5 orders, 2 countries, 472.25 EUR"
    assert xcoms(spinner, "shop_orders_etl", run_id, "announce") == {"return_value": announced}
    assert announced in spinner.task_log("shop_orders_etl", run_id, "announce")
    assert f"archiving the export of {extracted['exported_for']}" in spinner.task_log(
        "shop_orders_etl", run_id, "archive"
    )


def test_classic_operators_pull_in_templates_and_callables(spinner: Spinner) -> None:
    """examples/dags/spinner_tier_2_0/ads/spend_report.py."""
    result = spinner.run_dag("ads_spend_report")
    assert result["run"]["state"] == "success", result
    run_id = result["run"]["run_id"]
    assert xcoms(spinner, "ads_spend_report", run_id, "compute_spend") == {
        "return_value": {"spring_sale": 361.75, "brand": 78.5, "retargeting": 37.25},
        "top_campaign": "spring_sale",
    }
    assert xcoms(spinner, "ads_spend_report", run_id, "count_rows") == {"return_value": "8"}
    assert xcoms(spinner, "ads_spend_report", run_id, "log_only") == {}
    assert xcoms(spinner, "ads_spend_report", run_id, "check_budget") == {"return_value": "within"}
    line = "top campaign: spring_sale, budget: within, spring sale: 361.75"
    assert xcoms(spinner, "ads_spend_report", run_id, "report") == {"return_value": line}
    page = spinner.get(f"/dags/ads_spend_report/runs/{run_id}/tasks/compute_spend/log")
    assert page.status_code == 200 and '<table id="xcoms">' in page.text and "top_campaign" in page.text
    shown = spinner.cli("tasks", "xcom", "ads_spend_report", run_id, "compute_spend", "--json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert json.loads(shown.stdout)["top_campaign"] == "spring_sale"


def test_a_too_large_xcom_fails_the_task_with_the_key_and_size(spinner: Spinner) -> None:
    result = spinner.run_dag("xcom_too_large")
    assert result["run"]["state"] == "failed", result
    assert spinner.states(result) == {"big": "failed", "never": "upstream_failed"}, result
    error = result["tasks"]["big"]["error"]
    assert "XCom 'return_value' is 100002 bytes of JSON, more than the limit of 65536 bytes" in error, error
    run_id = result["run"]["run_id"]
    assert xcoms(spinner, "xcom_too_large", run_id, "big") == {}
    assert "more than the limit of 65536 bytes" in spinner.task_log("xcom_too_large", run_id, "big")

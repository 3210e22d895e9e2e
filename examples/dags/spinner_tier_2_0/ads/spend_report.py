"""Classic operators passing values through XCom: what one task returns, the next one pulls.

What it shows:
- a PythonOperator's return value is pushed as the XCom `return_value`; `ti.xcom_push(key, value)`
  pushes more under keys of its own;
- a BashOperator pushes the last line of its output (`do_xcom_push=False` turns that off);
- templates pull with `{{ ti.xcom_pull(task_ids='...') }}` (one task id: one value; a list of ids: a
  list of values; `key=` for another key; a value never pushed is None), and Python callables
  pull the same way through their `ti` argument.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from spinner import DAG, BashOperator, PythonOperator, Tier

CAMPAIGNS = {"spring_sale": [120.5, 98.0, 143.25], "brand": [40.0, 38.5], "retargeting": [12.75, 15.0, 9.5]}


def compute_spend(ti: Any) -> dict[str, float]:
    spend = {name: round(sum(hours), 2) for name, hours in CAMPAIGNS.items()}
    ti.xcom_push("top_campaign", max(spend, key=lambda name: spend[name]))
    return spend


def check_budget(ti: Any, params: dict[str, Any]) -> str:
    spend, row_count = ti.xcom_pull(task_ids=["compute_spend", "count_rows"])
    total = sum(spend.values())
    verdict = "over" if total > params["budget"] else "within"
    print(f"{row_count} rows, total spend {total:.2f}: {verdict} the budget of {params['budget']}")
    return verdict


with DAG(
    dag_id="ads_spend_report",
    tier=Tier.TIER2,
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    owner="ads",
    tags=["ads", "example", "xcom"],
    params={"budget": 500},
) as dag:
    spend = PythonOperator(task_id="compute_spend", python_callable=compute_spend)
    rows = BashOperator(task_id="count_rows", bash_command="echo counting rows; echo 8")
    quiet = BashOperator(task_id="log_only", bash_command="echo nothing to share", do_xcom_push=False)
    budget = PythonOperator(task_id="check_budget", python_callable=check_budget)
    report = BashOperator(
        task_id="report",
        bash_command=(
            "echo \"top campaign: {{ ti.xcom_pull(task_ids='compute_spend', key='top_campaign') }}, "
            "budget: {{ ti.xcom_pull(task_ids='check_budget') }}, "
            "spring sale: {{ ti.xcom_pull(task_ids='compute_spend')['spring_sale'] }}\""
        ),
    )
    [spend, rows, quiet] >> budget >> report

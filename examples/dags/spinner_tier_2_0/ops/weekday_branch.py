"""The operations team's daily DAG: it branches on the weekday and only publishes from the latest run.

What it shows:
- EmptyOperator for structure (`start`, `join`): the scheduler ends them, no process or log;
- BranchPythonOperator: a weekday report on Monday to Friday, a digest at the weekend (the run's
  conf `{"weekday": 0..6}` overrides the logical date's weekday); the branch not taken is skipped;
- the join after a branch with `none_failed_min_one_success`;
- ShortCircuitOperator: no new orders (conf `{"orders": 0}`) skips everything after it;
- BashOperator `env` / `append_env`, `cwd`, and `skip_on_exit_code` (exit 3: nothing to export);
- LatestOnlyOperator: a backfill of old days, or a late catch-up run, does not publish again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from spinner import (
    DAG,
    BashOperator,
    BranchPythonOperator,
    EmptyOperator,
    LatestOnlyOperator,
    ShortCircuitOperator,
    Tier,
    TriggerRule,
)


def pick_branch(logical_date: dt.datetime, dag_run: Any) -> str:
    weekday = int(dag_run.conf.get("weekday", logical_date.weekday()))
    return "weekend_digest" if weekday >= 5 else "weekday_report"


def has_new_orders(dag_run: Any) -> bool:
    orders = int(dag_run.conf.get("orders", 1))
    print(f"{orders} new orders")
    return orders > 0


with DAG(
    dag_id="ops_weekday_branch",
    tier=Tier.TIER2,
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    owner="ops",
    tags=["ops", "example", "branching"],
    description="Daily report or weekend digest, then the export, published by the latest run only",
) as dag:
    start = EmptyOperator(task_id="start")
    branch = BranchPythonOperator(task_id="pick_branch", python_callable=pick_branch)
    weekday_report = BashOperator(
        task_id="weekday_report",
        bash_command='echo "weekday report for $REPORT_DAY (PATH kept: ${PATH:+yes})"',
        env={"REPORT_DAY": "{{ ds }}"},
        append_env=True,
    )
    weekend_digest = BashOperator(
        task_id="weekend_digest",
        bash_command='echo "weekend digest for $REPORT_DAY"',
        env={"REPORT_DAY": "{{ ds }}"},
    )
    join = EmptyOperator(task_id="join", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    check = ShortCircuitOperator(task_id="has_new_orders", python_callable=has_new_orders)
    export = BashOperator(
        task_id="export_orders",
        bash_command=(
            "{% if dag_run.conf.get('nothing_to_export') %}echo 'nothing to export'; exit 3{% endif %}\n"
            "echo \"exporting orders of {{ ds }} from $(pwd)\""
        ),
        cwd="/tmp",
        skip_on_exit_code=3,
    )
    latest = LatestOnlyOperator(task_id="latest_only")
    publish = BashOperator(task_id="publish", bash_command="echo 'publishing the orders of {{ ds }}'")
    start >> branch >> [weekday_report, weekend_digest] >> join >> check >> export >> latest >> publish

"""An hourly DAG of the ads team with a retrying task and an all_done cleanup."""

from __future__ import annotations

import datetime as dt

from spinner import DAG, BashOperator, PythonOperator, Tier, TriggerRule


def aggregate(data_interval_start: dt.datetime, data_interval_end: dt.datetime) -> int:
    minutes = int((data_interval_end - data_interval_start).total_seconds() // 60)
    print(f"aggregating ad spend over {minutes} minutes")
    return minutes


with DAG(
    dag_id="ads_hourly_spend",
    tier=Tier.TIER2,
    schedule="@hourly",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    owner="ads",
    tags=["ads", "example"],
    description="Hourly ad spend roll-up",
    max_active_runs=1,
) as dag:
    fetch = BashOperator(task_id="fetch", bash_command="echo fetching spend for {{ ds }}", retries=2)
    agg = PythonOperator(task_id="aggregate", python_callable=aggregate)
    cleanup = BashOperator(task_id="cleanup", bash_command="echo cleanup", trigger_rule=TriggerRule.ALL_DONE)
    fetch >> agg >> cleanup

"""A nightly load that hands over to the dashboards DAG (ops/dashboards.py) when it is done.

What it shows: TriggerDagRunOperator with a templated `conf` and `trigger_run_id`, waiting for the
triggered run to end (`wait_for_completion`, `poke_interval`), and `skip_when_already_exists` so
that clearing this task does not fail on the run it made before. The triggered run records this
task as its trigger: its page links back here, and this task's page links to it.
"""

from __future__ import annotations

import datetime as dt

from spinner import DAG, BashOperator, Tier, TriggerDagRunOperator

with DAG(
    dag_id="ops_nightly_load",
    tier=Tier.TIER2,
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    owner="ops",
    tags=["ops", "example", "trigger"],
    description="Loads the day's orders, then refreshes the dashboards with that day",
) as dag:
    load = BashOperator(task_id="load_orders", bash_command="echo 'loading the orders of {{ ds }}'")
    refresh = TriggerDagRunOperator(
        task_id="refresh_dashboards",
        trigger_dag_id="ops_dashboards",
        trigger_run_id="nightly__{{ run_id }}",
        conf={"day": "{{ ds }}", "source": "{{ dag.dag_id }}"},
        wait_for_completion=True,
        poke_interval=2,
        skip_when_already_exists=True,
    )
    load >> refresh

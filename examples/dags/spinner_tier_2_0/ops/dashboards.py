"""The dashboards DAG: not scheduled, triggered by ops_nightly_load (ops/nightly_load.py) with the day
to refresh in its conf."""

from __future__ import annotations

from typing import Any

from spinner import DAG, PythonOperator, Tier


def refresh(dag_run: Any) -> str:
    day = dag_run.conf.get("day", "today")
    print(f"refreshing the dashboards for {day} (asked by {dag_run.conf.get('source', 'a person')})")
    return str(day)


with DAG(
    dag_id="ops_dashboards",
    tier=Tier.TIER2,
    schedule=None,
    owner="ops",
    tags=["ops", "example", "trigger"],
    description="Refreshes the dashboards for the day in the run's conf",
) as dag:
    PythonOperator(task_id="refresh", python_callable=refresh)

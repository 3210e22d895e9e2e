"""Close the books after the ledger is loaded: an ExternalTaskSensor on another DAG's task.

`finance_ledger_load` loads the day's ledger; `finance_daily_close` runs on the same daily
schedule and waits (reschedule mode: no process between pokes) for that run's `load_ledger` to
succeed, reading its state through the platform, never the database. If the ledger load fails
the close fails at once (failed_states) instead of waiting for its timeout. A run at another
date would use `execution_delta=dt.timedelta(hours=1)` or an `execution_date_fn`.
"""

from __future__ import annotations

import datetime as dt

from spinner import DAG, BashOperator, ExternalTaskSensor, Tier

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

with DAG(
    dag_id="finance_ledger_load",
    tier=Tier.TIER2,
    schedule="@daily",
    start_date=START,
    catchup=False,
    owner="finance",
    tags=["finance", "sensors", "example"],
    description="Load the day's ledger",
) as ledger:
    BashOperator(task_id="load_ledger", bash_command="echo loading the ledger for {{ ds }} && sleep 4")

with DAG(
    dag_id="finance_daily_close",
    tier=Tier.TIER2,
    schedule="@daily",
    start_date=START,
    catchup=False,
    owner="finance",
    tags=["finance", "sensors", "example"],
    description="Close the day once its ledger is loaded",
) as close:
    ledger_loaded = ExternalTaskSensor(
        task_id="wait_for_ledger",
        external_dag_id="finance_ledger_load",
        external_task_id="load_ledger",
        allowed_states=["success"],
        failed_states=["failed", "upstream_failed"],
        mode="reschedule",
        poke_interval=2,
        timeout=dt.timedelta(hours=2),
    )
    ledger_loaded >> BashOperator(task_id="close_books", bash_command="echo closing the books for {{ ds }}")

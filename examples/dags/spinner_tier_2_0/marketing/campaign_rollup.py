"""Task groups, chain() and cross_downstream(): a daily marketing roll-up from three ad networks.

Each network's ingest is a TaskGroup (ids "ingest.google.download", ...), nested under one
"ingest" group whose default_args give every download three retries; the grid shows each
group as one row with its tasks beneath. chain() puts the quality checks in order, and
cross_downstream() makes both reports wait for both checks.
"""

from __future__ import annotations

import datetime as dt

from spinner import DAG, BashOperator, PythonOperator, TaskGroup, Tier, chain, cross_downstream

NETWORKS = ("google", "meta", "tiktok")


def publish(ds: str) -> None:
    print(f"campaign roll-up for {ds} published to the dashboard")


with DAG(
    dag_id="marketing_campaign_rollup",
    tier=Tier.TIER2,
    schedule="0 6 * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    owner="marketing",
    tags=["marketing", "example", "task-groups"],
    description="Per-network ingest groups, ordered checks, reports after every check",
    default_args={"retry_delay": dt.timedelta(seconds=5)},
) as dag:
    start = BashOperator(task_id="start", bash_command="echo rolling up campaigns for {{ ds }}")

    with TaskGroup("ingest", default_args={"retries": 3}, tooltip="download and stage every network") as ingest:
        for network in NETWORKS:
            with TaskGroup(network):
                download = BashOperator(task_id="download", bash_command=f"echo downloading {network} spend")
                stage = BashOperator(task_id="stage", bash_command=f"echo staging {network} rows")
                download >> stage

    with TaskGroup("quality") as quality:
        checks = [
            BashOperator(task_id="row_counts", bash_command="echo row counts match"),
            BashOperator(task_id="no_negative_spend", bash_command="echo no negative spend"),
            BashOperator(task_id="currencies", bash_command="echo every currency is known"),
        ]
        chain(*checks)

    reports = [
        BashOperator(task_id="report_by_network", bash_command="echo spend by network"),
        BashOperator(task_id="report_by_campaign", bash_command="echo spend by campaign"),
    ]
    start >> ingest >> quality
    cross_downstream([quality], reports)
    reports >> PythonOperator(task_id="publish", python_callable=publish)

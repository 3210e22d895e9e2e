"""An hourly DAG of the ads team with a retrying task, a task with its own pod, and an all_done cleanup."""

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
    # On the Kubernetes backend the roll-up gets a bigger pod on amd64 nodes, may run on spot machines, and
    # has scratch space; what pod_override may set is the platform's policy (docs/authoring.md, "Pods").
    # The local backend ignores the pod's parts of executor_config.
    agg = PythonOperator(
        task_id="aggregate",
        python_callable=aggregate,
        executor_config={
            "request_memory": "1Gi",
            "limit_memory": "2Gi",
            "pod_override": {
                "metadata": {"labels": {"team": "ads"}, "annotations": {"example.com/cost-center": "ads-reporting"}},
                "spec": {
                    "nodeSelector": {"kubernetes.io/arch": "amd64"},
                    "tolerations": [
                        {"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true",
                         "effect": "NoSchedule"},
                    ],
                    "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}],
                    "containers": [{"volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}],
                },
            },
        },
    )  # fmt: skip
    cleanup = BashOperator(task_id="cleanup", bash_command="echo cleanup", trigger_rule=TriggerRule.ALL_DONE)
    fetch >> agg >> cleanup

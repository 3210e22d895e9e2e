"""The tutorial DAG: Python and Bash tasks, a templated command, a fan-out and a join."""

from __future__ import annotations

import datetime as dt

from spinner_examples.reports import DEFAULT_ARGS, summarize

from spinner import DAG, BashOperator, PythonOperator, Tier


def extract(**context: object) -> list[int]:
    numbers = [3, 1, 4, 1, 5, 9, 2, 6]
    print(f"extracted {len(numbers)} numbers for run {context['run_id']}")
    return numbers


def report(ds: str) -> None:
    result = summarize([3, 1, 4, 1, 5, 9, 2, 6])
    print(f"report for {ds}: {result}")


with DAG(
    dag_id="tutorial",
    tier=Tier.TIER1,
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={**DEFAULT_ARGS, "retry_delay": dt.timedelta(seconds=5)},
    tags=["example", "tutorial"],
    description="Python and Bash tasks with a templated command",
    params={"greeting": "hello"},
    access_control={"data-eng": {"can_dag_read", "can_dag_edit"}},
) as dag:
    print_date = BashOperator(task_id="print_date", bash_command="date -u")
    templated = BashOperator(
        task_id="templated",
        bash_command=(
            "echo '{{ params.greeting }} from {{ dag.dag_id }}'; "
            "echo 'ds={{ ds }} logical_date={{ logical_date }}'; "
            "echo 'interval {{ data_interval_start }} .. {{ data_interval_end }}'; "
            "echo 'run_id={{ run_id }}'"
        ),
    )
    extract_task = PythonOperator(task_id="extract", python_callable=extract)
    report_task = PythonOperator(task_id="report", python_callable=report)
    done = BashOperator(task_id="done", bash_command="echo all done")

    print_date >> [templated, extract_task]
    [templated, extract_task] >> report_task >> done

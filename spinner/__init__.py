"""Spinner: write workflows as DAGs of tasks in Python.

from spinner import DAG, Tier, BashOperator, PythonOperator
from spinner import dag, task          # TaskFlow
"""

from spinner.sdk.dag import DAG, Tier
from spinner.sdk.exceptions import FailNoRetry, SkipTask
from spinner.sdk.operators import BashOperator, PythonOperator
from spinner.sdk.taskflow import dag, task
from spinner.sdk.trigger_rule import TriggerRule
from spinner.sdk.xcom_arg import XComArg

__all__ = [
    "DAG", "BashOperator", "FailNoRetry", "PythonOperator", "SkipTask", "Tier", "TriggerRule", "XComArg", "dag", "task",
]  # fmt: skip

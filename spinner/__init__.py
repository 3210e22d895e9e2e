"""Spinner: write workflows as DAGs of tasks in Python.

from spinner import DAG, Tier, BashOperator, PythonOperator
"""

from spinner.sdk.dag import DAG, Tier
from spinner.sdk.exceptions import FailNoRetry, SkipTask
from spinner.sdk.operators import BashOperator, EmptyOperator, PythonOperator
from spinner.sdk.trigger_rule import TriggerRule

__all__ = [
    "DAG",
    "BashOperator",
    "EmptyOperator",
    "FailNoRetry",
    "PythonOperator",
    "SkipTask",
    "Tier",
    "TriggerRule",
]

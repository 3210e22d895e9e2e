"""Spinner: write workflows as DAGs of tasks in Python.

from spinner import DAG, Tier, BashOperator, PythonOperator
"""

from spinner.sdk.dag import DAG, Tier
from spinner.sdk.exceptions import FailNoRetry, SkipTask
from spinner.sdk.operators import (
    BashOperator,
    BranchPythonOperator,
    EmptyOperator,
    LatestOnlyOperator,
    PythonOperator,
    ShortCircuitOperator,
    TriggerDagRunOperator,
)
from spinner.sdk.trigger_rule import TriggerRule

__all__ = [
    "DAG",
    "BashOperator",
    "BranchPythonOperator",
    "EmptyOperator",
    "FailNoRetry",
    "LatestOnlyOperator",
    "PythonOperator",
    "ShortCircuitOperator",
    "SkipTask",
    "Tier",
    "TriggerDagRunOperator",
    "TriggerRule",
]

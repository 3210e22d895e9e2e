"""Spinner: write workflows as DAGs of tasks in Python.

from spinner import DAG, Tier, BashOperator, PythonOperator
"""

from spinner.sdk.connections import BaseHook, Connection
from spinner.sdk.dag import DAG, Tier
from spinner.sdk.exceptions import FailNoRetry, SkipTask
from spinner.sdk.operators import BashOperator, PythonOperator
from spinner.sdk.trigger_rule import TriggerRule
from spinner.sdk.variables import Variable

__all__ = [
    "DAG",
    "BaseHook",
    "BashOperator",
    "Connection",
    "FailNoRetry",
    "PythonOperator",
    "SkipTask",
    "Tier",
    "TriggerRule",
    "Variable",
]

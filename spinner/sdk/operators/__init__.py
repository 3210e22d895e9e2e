"""Operators, one module each. DAG authors import them from `spinner`."""

from spinner.sdk.operators.base import BaseOperator, retry_delay_for
from spinner.sdk.operators.bash import BashOperator
from spinner.sdk.operators.branch import BranchPythonOperator
from spinner.sdk.operators.empty import EmptyOperator
from spinner.sdk.operators.latest_only import LatestOnlyOperator
from spinner.sdk.operators.python import PythonOperator
from spinner.sdk.operators.short_circuit import ShortCircuitOperator
from spinner.sdk.operators.trigger_dagrun import TriggerDagRunOperator

__all__ = [
    "BaseOperator",
    "BashOperator",
    "BranchPythonOperator",
    "EmptyOperator",
    "LatestOnlyOperator",
    "PythonOperator",
    "ShortCircuitOperator",
    "TriggerDagRunOperator",
    "retry_delay_for",
]

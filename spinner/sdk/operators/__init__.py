"""Operators, one module each. DAG authors import them from `spinner`."""

from spinner.sdk.operators.base import BaseOperator, retry_delay_for
from spinner.sdk.operators.bash import BashOperator
from spinner.sdk.operators.empty import EmptyOperator
from spinner.sdk.operators.python import PythonOperator

__all__ = ["BaseOperator", "BashOperator", "EmptyOperator", "PythonOperator", "retry_delay_for"]

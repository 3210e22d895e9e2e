"""Spinner: write workflows as DAGs of tasks in Python.

from spinner import DAG, Tier, BashOperator, PythonOperator
"""

from spinner.sdk.dag import DAG, Tier
from spinner.sdk.exceptions import FailNoRetry, SkipTask
from spinner.sdk.operators import BashOperator, PythonOperator
from spinner.sdk.operators.sensors import (
    BaseSensorOperator,
    DateTimeSensor,
    ExternalTaskSensor,
    FileSensor,
    HttpSensor,
    PythonSensor,
    S3KeySensor,
    TimeDeltaSensor,
)
from spinner.sdk.trigger_rule import TriggerRule

__all__ = [
    "DAG",
    "BaseSensorOperator",
    "BashOperator",
    "DateTimeSensor",
    "ExternalTaskSensor",
    "FailNoRetry",
    "FileSensor",
    "HttpSensor",
    "PythonOperator",
    "PythonSensor",
    "S3KeySensor",
    "SkipTask",
    "Tier",
    "TimeDeltaSensor",
    "TriggerRule",
]

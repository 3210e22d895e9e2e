"""Spinner: write workflows as DAGs of tasks in Python.

Everything a DAG author uses is imported from here, as from `airflow.sdk` in Airflow 3:

    from spinner import DAG, Tier, BashOperator, PythonOperator, TaskGroup, chain
"""

from spinner.sdk.callbacks import Deadline
from spinner.sdk.chain import chain, cross_downstream
from spinner.sdk.connections import BaseHook, Connection
from spinner.sdk.dag import DAG, Tier
from spinner.sdk.exceptions import FailNoRetry, SkipTask
from spinner.sdk.notifiers import BaseNotifier, EmailNotifier, WebhookNotifier, send_email
from spinner.sdk.operators import (
    BaseOperator,
    BashOperator,
    BranchPythonOperator,
    EmptyOperator,
    LatestOnlyOperator,
    PythonOperator,
    ShortCircuitOperator,
    TriggerDagRunOperator,
)
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
from spinner.sdk.params import Param
from spinner.sdk.taskflow import PokeReturnValue, dag, task
from spinner.sdk.taskgroup import TaskGroup
from spinner.sdk.trigger_rule import TriggerRule
from spinner.sdk.variables import Variable
from spinner.sdk.xcom_arg import XComArg

__all__ = [
    "DAG",
    "BaseHook",
    "BaseNotifier",
    "BaseOperator",
    "BaseSensorOperator",
    "BashOperator",
    "BranchPythonOperator",
    "Connection",
    "DateTimeSensor",
    "Deadline",
    "EmailNotifier",
    "EmptyOperator",
    "ExternalTaskSensor",
    "FailNoRetry",
    "FileSensor",
    "HttpSensor",
    "LatestOnlyOperator",
    "Param",
    "PokeReturnValue",
    "PythonOperator",
    "PythonSensor",
    "S3KeySensor",
    "ShortCircuitOperator",
    "SkipTask",
    "TaskGroup",
    "Tier",
    "TimeDeltaSensor",
    "TriggerDagRunOperator",
    "TriggerRule",
    "Variable",
    "WebhookNotifier",
    "XComArg",
    "chain",
    "cross_downstream",
    "dag",
    "send_email",
    "task",
]

"""Spinner: write workflows as DAGs of tasks in Python.

from spinner import DAG, Tier, BashOperator, PythonOperator
"""

from spinner.sdk.callbacks import Deadline
from spinner.sdk.dag import DAG, Tier
from spinner.sdk.exceptions import FailNoRetry, SkipTask
from spinner.sdk.notifiers import BaseNotifier, EmailNotifier, WebhookNotifier, send_email
from spinner.sdk.operators import BashOperator, PythonOperator
from spinner.sdk.trigger_rule import TriggerRule

__all__ = [
    "DAG",
    "BaseNotifier",
    "BashOperator",
    "Deadline",
    "EmailNotifier",
    "FailNoRetry",
    "PythonOperator",
    "SkipTask",
    "Tier",
    "TriggerRule",
    "WebhookNotifier",
    "send_email",
]

"""Sensors: operators that wait for a condition, in poke or reschedule mode (docs/authoring.md)."""

from spinner.sdk.operators.sensors.base import BaseSensorOperator, SensorTry
from spinner.sdk.operators.sensors.date_time import DateTimeSensor
from spinner.sdk.operators.sensors.external_task import ExternalTaskFailed, ExternalTaskSensor
from spinner.sdk.operators.sensors.filesystem import FileSensor
from spinner.sdk.operators.sensors.http import HttpSensor
from spinner.sdk.operators.sensors.python import PythonSensor
from spinner.sdk.operators.sensors.s3 import S3KeySensor
from spinner.sdk.operators.sensors.time_delta import TimeDeltaSensor

__all__ = [
    "BaseSensorOperator",
    "DateTimeSensor",
    "ExternalTaskFailed",
    "ExternalTaskSensor",
    "FileSensor",
    "HttpSensor",
    "PythonSensor",
    "S3KeySensor",
    "SensorTry",
    "TimeDeltaSensor",
]

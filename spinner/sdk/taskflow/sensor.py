"""@task.sensor: a PythonSensor written as a function that returns whether the wait is over.

    @task.sensor(poke_interval=60, timeout=3600, mode="reschedule")
    def partner_file_landed(ds: str) -> bool:
        return bucket_has(f"partners/{ds}/orders.csv")

Sensor arguments (poke_interval, timeout, soft_fail, exponential_backoff, max_wait, mode) go to the
decorator. A PokeReturnValue(is_done, xcom_value) return also ends the wait and pushes xcom_value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from spinner.sdk.operators.sensors.python import PythonSensor
from spinner.sdk.taskflow.base import TaskFlowCall


@dataclass(frozen=True)
class PokeReturnValue:
    """What a @task.sensor function may return instead of a bool: done or not, and a value for XCom."""

    is_done: bool
    xcom_value: Any = None

    def __bool__(self) -> bool:
        return bool(self.is_done)


class DecoratedSensorOperator(TaskFlowCall, PythonSensor):
    """A PythonSensor made by @task.sensor: the call's arguments and the context reach the function."""

    def __init__(
        self,
        task_id: str,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: dict[str, Any] | None = None,
        multiple_outputs: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id, python_callable=python_callable, op_args=op_args, op_kwargs=op_kwargs, **kwargs)
        self.multiple_outputs = False
        self._xcom_value: Any = None

    def poke(self, context: dict[str, Any]) -> bool:
        result = self.call_callable(context)
        if isinstance(result, PokeReturnValue):
            self._xcom_value = result.xcom_value
            return result.is_done
        return bool(result)

    def execute(self, context: dict[str, Any]) -> Any:
        super().execute(context)
        return self._xcom_value

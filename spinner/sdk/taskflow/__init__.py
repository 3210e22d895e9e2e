"""TaskFlow: tasks and DAGs written as decorated Python functions.

    @task
    def extract() -> dict[str, int]: ...
    load(transform(extract()))   # dependencies and values through XCom

`task` is a collection of decorators, one attribute per kind: task.python (= task), task.bash,
task.branch, task.short_circuit, task.sensor. To add one, write its operator in its own module
here, taking python_callable / op_args / op_kwargs / multiple_outputs (see python.py), and add
one line to TaskDecoratorCollection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spinner.sdk.taskflow.base import DecoratedTask, TaskDecorator
from spinner.sdk.taskflow.bash import DecoratedBashOperator
from spinner.sdk.taskflow.branching import DecoratedBranchOperator, DecoratedShortCircuitOperator
from spinner.sdk.taskflow.dag import DagFunction, dag
from spinner.sdk.taskflow.python import DecoratedPythonOperator
from spinner.sdk.taskflow.sensor import DecoratedSensorOperator, PokeReturnValue


class TaskDecoratorCollection:
    """`@task` is `@task.python`; the other kinds are attributes."""

    python = TaskDecorator(DecoratedPythonOperator)
    bash = TaskDecorator(DecoratedBashOperator)
    branch = TaskDecorator(DecoratedBranchOperator)
    short_circuit = TaskDecorator(DecoratedShortCircuitOperator)
    sensor = TaskDecorator(DecoratedSensorOperator)

    def __call__(self, python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        return self.python(python_callable, **kwargs)


task = TaskDecoratorCollection()

__all__ = [
    "DagFunction",
    "DecoratedBashOperator",
    "DecoratedBranchOperator",
    "DecoratedPythonOperator",
    "DecoratedSensorOperator",
    "DecoratedShortCircuitOperator",
    "DecoratedTask",
    "PokeReturnValue",
    "TaskDecorator",
    "TaskDecoratorCollection",
    "dag",
    "task",
]

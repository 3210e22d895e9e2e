"""@task (= @task.python): the function runs as the task; its return value is the XCom return_value."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from spinner.sdk.operators.python import PythonOperator
from spinner.sdk.taskflow.base import TaskFlowCall


class DecoratedPythonOperator(TaskFlowCall, PythonOperator):
    """A PythonOperator made by @task: the call's arguments, with context values for the rest."""

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
        self.multiple_outputs = bool(multiple_outputs)

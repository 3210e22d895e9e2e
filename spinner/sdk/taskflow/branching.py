"""@task.branch and @task.short_circuit: BranchPythonOperator and ShortCircuitOperator written as functions.

    @task.branch
    def pick(ds: str) -> str:
        return "weekday_load" if is_weekday(ds) else "weekend_summary"

The function's arguments come from the call (XComArgs resolve at run time) and the context, as for @task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from spinner.sdk.operators.branch import BranchPythonOperator
from spinner.sdk.operators.short_circuit import ShortCircuitOperator
from spinner.sdk.taskflow.base import TaskFlowCall


class DecoratedBranchOperator(TaskFlowCall, BranchPythonOperator):
    """A BranchPythonOperator made by @task.branch: the function returns the task id(s) to follow."""

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
        self.multiple_outputs = False  # the result is the branch taken, pushed as one value


class DecoratedShortCircuitOperator(TaskFlowCall, ShortCircuitOperator):
    """A ShortCircuitOperator made by @task.short_circuit: a falsy return skips what comes after."""

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

"""PythonSensor: waits until a Python callable returns a true value."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from spinner.sdk.exceptions import DagDefinitionError
from spinner.sdk.operators.python import call_python
from spinner.sdk.operators.sensors.base import BaseSensorOperator


class PythonSensor(BaseSensorOperator):
    """Pokes `python_callable`; context values are passed to the parameters it names (as PythonOperator)."""

    template_fields = ("templates_dict", "op_args", "op_kwargs")

    def __init__(
        self,
        task_id: str,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: dict[str, Any] | None = None,
        templates_dict: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id, **kwargs)
        if not callable(python_callable):
            name = self.dag.dag_id if self.dag else "?"
            raise DagDefinitionError(f"DAG '{name}', task '{task_id}': python_callable must be callable")
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = templates_dict

    def poke(self, context: dict[str, Any]) -> bool:
        return bool(call_python(self.python_callable, self.op_args, self.op_kwargs, self.templates_dict, context))

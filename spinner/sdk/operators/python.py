"""PythonOperator: calls a Python function with the context values it names."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from spinner.sdk.exceptions import DagDefinitionError
from spinner.sdk.operators.base import BaseOperator


class PythonOperator(BaseOperator):
    """Calls a Python function. Context values are passed to the parameters the function names."""

    template_fields = ("templates_dict", "op_args", "op_kwargs")

    def __init__(
        self,
        task_id: str,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: dict[str, Any] | None = None,
        templates_dict: dict[str, Any] | None = None,
        templates_exts: Sequence[str] | None = None,
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
        if templates_exts:  # Airflow's: templates_dict values ending with these are template files
            self.template_ext = tuple(templates_exts)

    def execute(self, context: dict[str, Any]) -> Any:
        return self.call_callable(context)

    def call_callable(self, context: dict[str, Any]) -> Any:
        """Calls python_callable with op_args, op_kwargs and the context values it names. Subclasses that
        do more with the result (a branch, a short circuit) call this, so TaskFlow can change the call."""
        return call_python(self.python_callable, self.op_args, self.op_kwargs, self.templates_dict, context)


def call_python(
    fn: Callable[..., Any],
    op_args: Sequence[Any],
    op_kwargs: dict[str, Any],
    templates_dict: dict[str, Any] | None,
    context: dict[str, Any],
) -> Any:
    """fn(*op_args, **op_kwargs), with each context value whose name fn's parameters name (all of them
    for **kwargs), templates_dict included; op_kwargs win over the context."""
    context = {**context, "templates_dict": templates_dict}
    kwargs = dict(op_kwargs)
    signature = inspect.signature(fn)
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    for name, value in context.items():
        if name in kwargs:
            continue
        if takes_all or name in signature.parameters:
            kwargs[name] = value
    return fn(*op_args, **kwargs)

"""@task.bash: the function returns the command (rendered as a template, then run like BashOperator)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from spinner.sdk.operators.bash import BashOperator
from spinner.sdk.taskflow.base import call_with_context
from spinner.sdk.templating import render_value


class DecoratedBashOperator(BashOperator):
    # BashOperator's fields are inferred as a 2-tuple; every operator's are a Sequence[str] really.
    template_fields = ("bash_command", "env", "op_args", "op_kwargs")  # type: ignore[assignment]

    def __init__(
        self,
        task_id: str,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: dict[str, Any] | None = None,
        multiple_outputs: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id, bash_command="", **kwargs)
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})
        self.multiple_outputs = bool(multiple_outputs)

    def execute(self, context: dict[str, Any]) -> Any:
        command = call_with_context(self.python_callable, list(self.op_args), dict(self.op_kwargs), context)
        if not isinstance(command, str) or not command.strip():
            raise TypeError(
                f"the @task.bash function {self.python_callable.__name__} must return the command to run "
                f"(a non-empty string), not {command!r}"
            )
        self.bash_command = render_value(command, context)
        return super().execute(context)

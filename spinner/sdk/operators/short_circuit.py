"""ShortCircuitOperator: a falsy result of its callable skips what comes after it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from spinner.sdk import skipping
from spinner.sdk.operators.python import PythonOperator


class ShortCircuitOperator(PythonOperator):
    """Calls `python_callable`; a truthy result lets the DAG go on. A falsy one skips every task downstream,
    whatever their trigger rules (`ignore_downstream_trigger_rules=True`, the default), or only the direct
    downstream tasks, leaving the rest to their trigger rules (`False`)."""

    def __init__(
        self,
        task_id: str,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: dict[str, Any] | None = None,
        templates_dict: dict[str, Any] | None = None,
        ignore_downstream_trigger_rules: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id, python_callable, op_args, op_kwargs, templates_dict, **kwargs)
        self.ignore_downstream_trigger_rules = bool(ignore_downstream_trigger_rules)

    def execute(self, context: dict[str, Any]) -> Any:
        condition = super().execute(context)
        if condition:
            print(f"Condition result is {condition!r}: proceeding with the downstream tasks", flush=True)
            return condition
        if self.ignore_downstream_trigger_rules:
            skipped = skipping.all_downstream(self)
        else:
            skipped = skipping.direct_downstream(self)
        print(f"Condition result is {condition!r}: skipping {sorted(skipped)}", flush=True)
        skipping.skip(skipped)
        return condition

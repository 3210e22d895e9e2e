"""EmptyOperator: a task that does nothing, for joins and structure. No process is ever started for it."""

from __future__ import annotations

from typing import Any, ClassVar

from spinner.sdk.operators.base import BaseOperator


class EmptyOperator(BaseOperator):
    """Does nothing. The scheduler moves it none -> success itself once its trigger rule passes, so it
    costs no pod, no runner process and has no log (a skip or an upstream failure applies as usual)."""

    ends_in_scheduler: ClassVar[bool] = True

    def execute(self, context: dict[str, Any]) -> Any:
        return None  # reached only when someone runs the task by hand (spinner tasks test)

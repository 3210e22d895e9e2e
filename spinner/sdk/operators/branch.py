"""BranchPythonOperator: follows the branches its callable names and skips the other direct downstream tasks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from spinner.sdk import skipping
from spinner.sdk.operators.python import PythonOperator


class BranchError(ValueError):
    """A branch callable returned something that is not a direct downstream task id (the try fails)."""


class BranchPythonOperator(PythonOperator):
    """Calls `python_callable`, which returns a task id, a list of task ids, or None (follow nothing).
    The direct downstream tasks it did not name are skipped when the try succeeds; skipped then
    propagates through trigger rules (join the branches with `none_failed_min_one_success`)."""

    def execute(self, context: dict[str, Any]) -> Any:
        chosen = super().execute(context)
        follow = self.follow(chosen)
        skipping.skip(skipping.direct_downstream(self) - follow)
        return chosen

    def follow(self, chosen: Any) -> set[str]:
        """The task ids a branch callable's result names, checked against the DAG."""
        where = f"Branch task '{self.task_id}' of DAG '{self.dag.dag_id if self.dag else '?'}'"
        if chosen is None:
            ids: list[Any] = []
        elif isinstance(chosen, str):
            ids = [chosen]
        elif isinstance(chosen, Iterable):
            ids = list(chosen)
        else:
            raise BranchError(f"{where} returned {chosen!r}; return a task id, a list of task ids, or None")
        if not all(isinstance(i, str) for i in ids):
            raise BranchError(f"{where} returned {chosen!r}; task ids are strings")
        known = set(self.dag.task_dict) if self.dag else set()
        unknown = sorted(set(ids) - known)
        if unknown:
            raise BranchError(f"{where} returned unknown task id(s) {unknown}; the DAG has no such task")
        downstream = skipping.direct_downstream(self)
        not_downstream = sorted(set(ids) - downstream)
        if not_downstream:
            raise BranchError(
                f"{where} returned {not_downstream}, which are not directly downstream of it; "
                f"choose among {sorted(downstream)}"
            )
        return set(ids)

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
    The direct downstream tasks it did not name (and that are not downstream of one it named) are
    skipped when the try succeeds; skipped then
    propagates through trigger rules (join the branches with `none_failed_min_one_success`)."""

    def execute(self, context: dict[str, Any]) -> Any:
        chosen = super().execute(context)
        follow = self.follow(chosen)
        skipping.skip(self.to_skip(follow))
        return chosen

    def to_skip(self, follow: set[str]) -> set[str]:
        """The direct downstream tasks not followed, except those that are also downstream of a followed
        one (Airflow's rule: in `branch >> [a, join]; a >> join`, following `a` runs `join` too)."""
        reached = set(follow)
        for task_id in follow:
            if self.dag is not None:
                reached |= skipping.all_downstream(self.dag.get_task(task_id))
        return skipping.direct_downstream(self) - reached

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

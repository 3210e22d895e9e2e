"""TaskGroup: tasks under one name, for reading a large DAG (Airflow's TaskGroup).

Inside `with TaskGroup("extract") as tg:` every task's id gets the group's prefix
("extract.load_users"), takes the group's default_args over the DAG's, and the group can be
linked as one: `tg >> report` makes every leaf of the group upstream of report, `start >> tg`
makes start upstream of every root. Groups nest; ids join with ".".
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from spinner.sdk.dag import DAG, ID_RE, current_dag
from spinner.sdk.dependencies import DependencyMixin
from spinner.sdk.exceptions import DagDefinitionError

if TYPE_CHECKING:
    from spinner.sdk.operators.base import BaseOperator

_current_groups: contextvars.ContextVar[tuple[TaskGroup, ...]] = contextvars.ContextVar(
    "spinner_task_groups", default=()
)


def current_task_group(dag: DAG | None) -> TaskGroup | None:
    """The innermost open group of `dag` (a group of another DAG does not apply)."""
    for group in reversed(_current_groups.get()):
        if group.dag is dag:
            return group
    return None


def default_args_for(dag: DAG | None) -> dict[str, Any]:
    """The default_args a task created now gets: the DAG's, then each enclosing group's over them."""
    merged: dict[str, Any] = dict(dag.default_args) if dag is not None else {}
    group = current_task_group(dag)
    chain: list[TaskGroup] = []
    while group is not None:
        chain.append(group)
        group = group.parent_group
    for g in reversed(chain):
        merged.update(g.default_args)
    return merged


class TaskGroup(DependencyMixin):
    def __init__(
        self,
        group_id: str,
        prefix_group_id: bool = True,
        parent_group: TaskGroup | None = None,
        dag: DAG | None = None,
        default_args: dict[str, Any] | None = None,
        tooltip: str = "",
        ui_color: str = "CornflowerBlue",
        ui_fgcolor: str = "#000",
        add_suffix_on_collision: bool = False,
    ) -> None:
        owner: DAG | None = dag or (parent_group.dag if parent_group else None) or current_dag()
        if owner is None:
            raise DagDefinitionError(f"TaskGroup {group_id!r} must be created inside a DAG or given dag=")
        self.dag: DAG = owner
        where = f"DAG '{self.dag.dag_id}'"
        if not isinstance(group_id, str) or not ID_RE.match(group_id) or "." in group_id:
            raise DagDefinitionError(f"{where}: task group id {group_id!r} must be 1-250 letters, digits, '_' or '-'")
        self.parent_group = parent_group if parent_group is not None else current_task_group(self.dag)
        if self.parent_group is not None and self.parent_group.dag is not self.dag:
            raise DagDefinitionError(f"{where}: task group {group_id!r} is inside a group of another DAG")
        self._local_id = group_id
        self.prefix_group_id = bool(prefix_group_id)
        self.default_args = dict(default_args or {})
        self.tooltip = tooltip
        self.ui_color = ui_color
        self.ui_fgcolor = ui_fgcolor
        self.children: dict[str, BaseOperator | TaskGroup] = {}
        groups = self.dag.task_groups
        if add_suffix_on_collision and self.group_id in groups:
            base, n = group_id, 1
            while self.group_id in groups:
                n += 1
                self._local_id = f"{base}__{n}"
        if self.group_id in groups:
            raise DagDefinitionError(f"{where}: duplicate task group id '{self.group_id}'")
        groups[self.group_id] = self
        if self.parent_group is not None:
            self.parent_group.children[self.group_id] = self
        self._token: contextvars.Token[tuple[TaskGroup, ...]] | None = None

    @property
    def group_id(self) -> str:
        """The full id: the enclosing groups' ids and this one's, joined with '.'."""
        if self.parent_group is not None and self.parent_group.prefix_group_id:
            return f"{self.parent_group.group_id}.{self._local_id}"
        return self._local_id

    def child_id(self, label: str) -> str:
        """The id a task labelled `label` gets in this group."""
        if self.prefix_group_id:
            return f"{self.group_id}.{label}"
        return self.parent_group.child_id(label) if self.parent_group is not None else label

    def add(self, task: BaseOperator) -> None:
        self.children[task.task_id] = task

    # --- what the group is made of ---------------------------------------------------

    def iter_tasks(self) -> Iterator[BaseOperator]:
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                yield from child.iter_tasks()
            else:
                yield child

    @property
    def roots(self) -> list[BaseOperator]:
        """Tasks of the group with no upstream inside it."""
        ids = {t.task_id for t in self.iter_tasks()}
        return [t for t in self.iter_tasks() if not (t.upstream_task_ids & ids)]

    @property
    def leaves(self) -> list[BaseOperator]:
        """Tasks of the group with no downstream inside it."""
        ids = {t.task_id for t in self.iter_tasks()}
        return [t for t in self.iter_tasks() if not (t.downstream_task_ids & ids)]

    def _endpoints(self, upstream_side: bool) -> list[BaseOperator]:
        tasks = self.leaves if upstream_side else self.roots
        if not tasks:
            raise DagDefinitionError(
                f"DAG '{self.dag.dag_id}': task group '{self.group_id}' has no tasks to set dependencies on"
            )
        return tasks

    # --- dependencies: the group as one node ---------------------------------------

    def set_downstream(self, other: Any) -> None:
        for task in self._endpoints(upstream_side=True):
            task.set_downstream(other)

    def set_upstream(self, other: Any) -> None:
        for task in self._endpoints(upstream_side=False):
            task.set_upstream(other)

    # --- context manager -------------------------------------------------------------

    def __enter__(self) -> TaskGroup:
        self._token = _current_groups.set((*_current_groups.get(), self))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None:
            _current_groups.reset(self._token)
            self._token = None

    def __repr__(self) -> str:
        return f"<TaskGroup {self.group_id}>"


def task_group_path(task: BaseOperator) -> list[str]:
    """The ids of the groups a task is in, outermost first (empty outside any group)."""
    path: list[str] = []
    group = task.task_group
    while group is not None:
        path.append(group.group_id)
        group = group.parent_group
    return path[::-1]

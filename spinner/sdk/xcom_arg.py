"""XComArg: the value a task will return, used as an argument of another task before it exists.

`load(transform(extract()))` passes XComArgs: each resolves at run time to the upstream task's
XCom (through the try's `ti.xcom_pull`) and, when it is given to a task, makes that task
depend on the one that pushes it. DagParam is the same idea for a @dag function's parameters:
it resolves to the run's value of that param.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from spinner.sdk.dependencies import DependencyMixin
from spinner.sdk.exceptions import DagDefinitionError

if TYPE_CHECKING:
    from spinner.sdk.operators.base import BaseOperator

RETURN_VALUE = "return_value"


class Resolvable:
    """A placeholder in a task's arguments that becomes a real value only when the task runs."""

    def resolve(self, context: dict[str, Any]) -> Any:
        raise NotImplementedError


class XComArg(Resolvable, DependencyMixin):
    """The XCom `key` of `operator` (its return value by default). `arg["name"]` is another key of it."""

    def __init__(self, operator: BaseOperator, key: str = RETURN_VALUE) -> None:
        self.operator = operator
        self.key = key

    @property
    def task_id(self) -> str:
        return self.operator.task_id

    def __getitem__(self, key: str) -> XComArg:
        if not isinstance(key, str):
            raise DagDefinitionError(
                f"{_where(self.operator)}: an XComArg is indexed by an XCom key (a string), not {key!r}"
            )
        return XComArg(self.operator, key)

    def __iter__(self) -> Iterator[Any]:
        # Without this, `a, b = task()` would loop forever through __getitem__.
        raise TypeError(f"{_where(self.operator)}: an XComArg cannot be unpacked or iterated at DAG definition time")

    def resolve(self, context: dict[str, Any]) -> Any:
        return context["ti"].xcom_pull(task_ids=self.operator.task_id, key=self.key)

    # --- dependencies: an XComArg stands for its task ---------------------------------------

    def set_downstream(self, other: Any) -> None:
        self.operator.set_downstream(other)

    def set_upstream(self, other: Any) -> None:
        self.operator.set_upstream(other)

    def __repr__(self) -> str:  # stable: it is part of the serialized DAG (and its hash)
        return f"XComArg(task_id={self.operator.task_id!r}, key={self.key!r})"


class DagParam(Resolvable):
    """A @dag function's parameter: the run's value of param `name` (run conf overrides the default)."""

    def __init__(self, name: str, default: Any) -> None:
        self.name = name
        self.default = default

    def resolve(self, context: dict[str, Any]) -> Any:
        return context["params"].get(self.name, self.default)

    def __repr__(self) -> str:
        return f"DagParam({self.name!r})"


def as_operator(value: Any) -> Any:
    """An XComArg in a dependency (`xcom_arg >> task`, `[a, xcom_arg] >> b`) means its task."""
    return value.operator if isinstance(value, XComArg) else value


def xcom_args_in(value: Any) -> Iterator[XComArg]:
    if isinstance(value, XComArg):
        yield value
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from xcom_args_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from xcom_args_in(item)


def link_xcom_args(task: BaseOperator, value: Any) -> None:
    """Makes `task` depend on the task of every XComArg found in `value` (one of its templated fields)."""
    for arg in xcom_args_in(value):
        upstream = arg.operator
        if upstream is task:
            raise DagDefinitionError(f"{_where(task)}: uses its own XCom '{arg.key}' as an argument")
        if upstream.dag is None or upstream.dag is not task.dag:
            theirs = upstream.dag.dag_id if upstream.dag else None
            raise DagDefinitionError(
                f"{_where(task)}: uses the XCom of task '{upstream.task_id}' of DAG {theirs!r}; an XComArg "
                "can only be passed to tasks of its own task's DAG"
            )
        upstream.set_downstream(task)


def _where(task: BaseOperator) -> str:
    return f"DAG '{task.dag.dag_id if task.dag else '?'}', task '{task.task_id}'"

"""The machinery every TaskFlow decorator shares: a decorated function that, called inside a DAG,
creates one operator task and returns its XComArg.

A decorator is `TaskDecorator(OperatorClass)`: the operator takes `python_callable`, `op_args`
and `op_kwargs` (the call's arguments, where XComArgs resolve at run time), `multiple_outputs`,
and every task argument (retries, pool, ...) given to the decorator or to `.override(...)`.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

from spinner.sdk.dag import DAG, current_dag
from spinner.sdk.exceptions import DagDefinitionError
from spinner.sdk.mapping import ExpandInput, OperatorPartial, link_inputs
from spinner.sdk.operators.base import BaseOperator
from spinner.sdk.xcom_arg import XComArg


def unique_task_id(dag: DAG, task_id: str) -> str:
    """Airflow's rule for a function used twice in a DAG: extract, extract__1, extract__2, ..."""
    if task_id not in dag.task_dict:
        return task_id
    head, _, tail = task_id.rpartition("__")
    base = head if head and tail.isdigit() else task_id
    n = 1
    while f"{base}__{n}" in dag.task_dict:
        n += 1
    return f"{base}__{n}"


def returns_dict(fn: Callable[..., Any]) -> bool:
    """`-> dict[str, int]` means multiple_outputs, as in Airflow."""
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:  # an annotation that does not resolve outside the module: no inference
        return False
    return hint is dict or typing.get_origin(hint) is dict


def call_with_context(fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], context: dict[str, Any]) -> Any:
    """Calls the task function with its arguments, and context values for the parameters left unbound
    that are named like one (`ti`, `params`, `ds`, ...), or all of them for `**kwargs`."""
    signature = inspect.signature(fn)
    bound = signature.bind_partial(*args, **kwargs).arguments
    extra: dict[str, Any] = {}
    takes_all = False
    for name, p in signature.parameters.items():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            takes_all = True
        elif name not in bound and name in context and p.kind is not inspect.Parameter.VAR_POSITIONAL:
            extra[name] = context[name]
    if takes_all:
        extra.update({k: v for k, v in context.items() if k not in bound and k not in kwargs})
    return fn(*args, **kwargs, **extra)


class TaskFlowCall:
    """For the operators @task kinds make: the function gets the call's arguments, and context values
    for the parameters left unbound. PythonOperator and its subclasses call python_callable through
    call_callable, so this is all a decorated kind changes."""

    python_callable: Callable[..., Any]
    op_args: list[Any]
    op_kwargs: dict[str, Any]
    templates_dict: dict[str, Any] | None

    def call_callable(self, context: dict[str, Any]) -> Any:
        context = {**context, "templates_dict": self.templates_dict}
        return call_with_context(self.python_callable, list(self.op_args), dict(self.op_kwargs), context)


class DecoratedTask:
    """What `@task` makes of a function: call it inside a DAG to add a task (it returns its XComArg)."""

    def __init__(
        self, operator_class: Callable[..., BaseOperator], function: Callable[..., Any], kwargs: dict[str, Any]
    ) -> None:
        if not callable(function):
            raise DagDefinitionError(f"@task decorates a function, not {function!r}")
        self.operator_class = operator_class
        self.function = function  # the plain function, for unit tests of task code
        self.kwargs = kwargs
        functools.update_wrapper(self, function)

    @property
    def task_id(self) -> str:
        return str(self.kwargs.get("task_id") or self.function.__name__)

    def override(self, **kwargs: Any) -> DecoratedTask:
        """The same task function with other task arguments: `extract.override(task_id="extract_eu")()`."""
        return DecoratedTask(self.operator_class, self.function, {**self.kwargs, **kwargs})

    def __call__(self, *args: Any, **kwargs: Any) -> XComArg:
        dag = self.kwargs.get("dag") or current_dag()
        if dag is None:
            raise DagDefinitionError(
                f"task function '{self.task_id}' was called outside a DAG: call it inside `with DAG(...)` "
                "or in a @dag function (or pass dag=... to the decorator)"
            )
        task_kwargs = dict(self.kwargs)
        task_kwargs.pop("dag", None)
        task_id = unique_task_id(dag, self.task_id)
        task_kwargs.pop("task_id", None)
        try:
            inspect.signature(self.function).bind_partial(*args, **kwargs)
        except TypeError as e:
            raise DagDefinitionError(f"DAG '{dag.dag_id}', task '{task_id}': {e}") from None
        if "multiple_outputs" not in task_kwargs:
            task_kwargs["multiple_outputs"] = returns_dict(self.function)
        try:
            operator = self.operator_class(
                task_id=task_id,
                dag=dag,
                python_callable=self.function,
                op_args=list(args),
                op_kwargs=dict(kwargs),
                **task_kwargs,
            )
        except TypeError as e:  # a task argument the operator does not take (`retires=3`)
            raise DagDefinitionError(f"DAG '{dag.dag_id}', task '{task_id}': {e}") from None
        return XComArg(operator)

    def partial(self, **kwargs: Any) -> OperatorPartial:
        """The fixed arguments of a mapped task function; `.expand(name=[...])` gives the mapped ones."""

        def build(placeholders: dict[str, Any], expand_input: ExpandInput) -> XComArg:
            arg = self(**kwargs, **placeholders)
            arg.operator.expand_input = expand_input
            link_inputs(arg.operator, expand_input)
            return arg

        parameters = frozenset(inspect.signature(self.function).parameters)
        return OperatorPartial(build, f"task function '{self.task_id}'", kwargs, parameters, in_kwargs=True)

    def expand(self, **kwargs: Any) -> XComArg:
        """One task instance per item (per combination of items) of the mapped arguments."""
        mapped: XComArg = self.partial().expand(**kwargs)
        return mapped

    def __repr__(self) -> str:
        return f"<@task {self.task_id} ({getattr(self.operator_class, '__name__', self.operator_class)})>"


class TaskDecorator:
    """One kind of @task (`task`, `task.bash`, ...): `@d`, `@d()` and `@d(retries=2, ...)` all work."""

    def __init__(self, operator_class: Callable[..., BaseOperator]) -> None:
        """`operator_class` takes task_id, dag, python_callable, op_args, op_kwargs, multiple_outputs."""
        self.operator_class = operator_class

    def __call__(self, python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        if python_callable is not None:
            return DecoratedTask(self.operator_class, python_callable, kwargs)

        def decorate(fn: Callable[..., Any]) -> DecoratedTask:
            return DecoratedTask(self.operator_class, fn, kwargs)

        return decorate

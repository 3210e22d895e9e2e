"""@dag: a function that builds a DAG when called. Its parameters become the DAG's params."""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any

from spinner.sdk.dag import DAG
from spinner.sdk.exceptions import DagDefinitionError
from spinner.sdk.xcom_arg import DagParam


class DagFunction:
    """`my_pipeline = dag(tier=...)(fn)`; `my_pipeline()` builds the DAG (dag_id: the function's name)."""

    def __init__(self, function: Callable[..., Any], dag_kwargs: dict[str, Any]) -> None:
        self.function = function
        self.dag_kwargs = dag_kwargs
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> DAG:
        dag_id = str(self.dag_kwargs.get("dag_id") or self.function.__name__)
        signature = inspect.signature(self.function)
        try:
            bound = signature.bind_partial(*args, **kwargs)
        except TypeError as e:
            raise DagDefinitionError(f"DAG '{dag_id}': the @dag function's arguments: {e}") from None
        bound.apply_defaults()
        params = dict(self.dag_kwargs.get("params") or {})
        for name, p in signature.parameters.items():
            if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise DagDefinitionError(f"DAG '{dag_id}': a @dag function cannot take *{name} or **{name}")
            if name not in bound.arguments:
                raise DagDefinitionError(
                    f"DAG '{dag_id}': parameter '{name}' needs a default or a value in the call (it becomes a param)"
                )
            params[name] = bound.arguments[name]
        dag_kwargs = {k: v for k, v in self.dag_kwargs.items() if k not in ("dag_id", "params")}
        dag_kwargs.setdefault("description", (self.function.__doc__ or "").strip().split("\n")[0])
        with DAG(dag_id, params=params, **dag_kwargs) as built:
            self.function(**{name: DagParam(name, bound.arguments[name]) for name in signature.parameters})
        # The loader finds DAGs among the module's globals: a bare `my_pipeline()` at module level is kept too.
        caller = sys._getframe(1).f_globals
        caller.setdefault(f"__spinner_dag_{dag_id}", built)
        return built


def dag(function: Callable[..., Any] | None = None, **dag_kwargs: Any) -> Any:
    """`@dag(tier=Tier.TIER2, schedule="@daily", ...)` over a function whose body creates the tasks."""
    if function is not None:
        return DagFunction(function, dag_kwargs)

    def decorate(fn: Callable[..., Any]) -> DagFunction:
        return DagFunction(fn, dag_kwargs)

    return decorate

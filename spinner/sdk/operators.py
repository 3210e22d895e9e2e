"""Tasks: BaseOperator with dependencies, retries and templating; PythonOperator and BashOperator."""

from __future__ import annotations

import datetime as dt
import inspect
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from spinner.sdk.dag import DAG, ID_RE, current_dag
from spinner.sdk.exceptions import DagDefinitionError, SkipTask
from spinner.sdk.templating import render_value
from spinner.sdk.trigger_rule import TriggerRule

EXECUTOR_CONFIG_KEYS = frozenset(
    {"request_memory", "request_cpu", "limit_memory", "limit_cpu", "env", "requirements", "pod_override"}
)
_QUANTITY = re.compile(r"^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")

_UNSET: Any = object()

# Arguments that default_args of the DAG may supply, with their own defaults.
DEFAULTS: dict[str, Any] = {
    "retries": 0,
    "retry_delay": dt.timedelta(minutes=5),
    "retry_exponential_backoff": False,
    "max_retry_delay": None,
    "execution_timeout": None,
    "trigger_rule": TriggerRule.ALL_SUCCESS,
    "executor_config": None,
    "owner": None,
    "params": None,
    "priority_weight": 1,
    "pool": "default_pool",
    "doc": "",
}


class BaseOperator:
    """One task of a DAG. Subclasses implement `execute(context)`."""

    template_fields: ClassVar[Sequence[str]] = ()

    def __init__(
        self,
        task_id: str,
        dag: DAG | None = None,
        retries: int = _UNSET,
        retry_delay: dt.timedelta = _UNSET,
        retry_exponential_backoff: bool = _UNSET,
        max_retry_delay: dt.timedelta | None = _UNSET,
        execution_timeout: dt.timedelta | None = _UNSET,
        trigger_rule: str = _UNSET,
        executor_config: dict[str, Any] | None = _UNSET,
        owner: str | None = _UNSET,
        params: dict[str, Any] | None = _UNSET,
        priority_weight: int = _UNSET,
        pool: str = _UNSET,
        doc: str = _UNSET,
    ) -> None:
        dag = dag or current_dag()
        dag_name = dag.dag_id if dag else "?"
        if not isinstance(task_id, str) or not ID_RE.match(task_id):
            raise DagDefinitionError(
                f"DAG '{dag_name}': task id {task_id!r} must be 1-250 letters, digits, '_', '-' or '.'"
            )
        self.task_id = task_id
        given: dict[str, Any] = {
            "retries": retries, "retry_delay": retry_delay,
            "retry_exponential_backoff": retry_exponential_backoff, "max_retry_delay": max_retry_delay,
            "execution_timeout": execution_timeout, "trigger_rule": trigger_rule,
            "executor_config": executor_config, "owner": owner, "params": params,
            "priority_weight": priority_weight, "pool": pool, "doc": doc,
        }  # fmt: skip
        defaults = dag.default_args if dag else {}
        values = {
            name: (value if value is not _UNSET else defaults.get(name, DEFAULTS[name]))
            for name, value in given.items()
        }
        where = f"DAG '{dag_name}', task '{task_id}'"
        try:
            self.trigger_rule = TriggerRule(values["trigger_rule"])
        except ValueError:
            raise DagDefinitionError(
                f"{where}: unknown trigger rule {values['trigger_rule']!r}; "
                f"use one of {', '.join(r.value for r in TriggerRule)}"
            ) from None
        self.retries = int(values["retries"])
        if self.retries < 0:
            raise DagDefinitionError(f"{where}: retries must be 0 or more")
        self.retry_delay = _as_timedelta(values["retry_delay"], where, "retry_delay")
        self.retry_exponential_backoff = bool(values["retry_exponential_backoff"])
        self.max_retry_delay = _as_timedelta(values["max_retry_delay"], where, "max_retry_delay")
        self.execution_timeout = _as_timedelta(values["execution_timeout"], where, "execution_timeout")
        self.executor_config = _check_executor_config(values["executor_config"], where)
        self.owner = values["owner"] or (dag.owner if dag else "spinner")
        self.params = dict(values["params"] or {})
        self.priority_weight = int(values["priority_weight"])
        self.pool = str(values["pool"])
        self.doc = str(values["doc"])
        self.upstream_task_ids: set[str] = set()
        self.downstream_task_ids: set[str] = set()
        self.dag: DAG | None = None
        if dag is not None:
            self.dag = dag
            dag.add_task(self)

    # --- dependencies ----------------------------------------------------------------

    def _link(self, other: BaseOperator) -> None:
        """self >> other."""
        if not isinstance(other, BaseOperator):
            raise TypeError(f"cannot set a dependency between task '{self.task_id}' and {other!r}")
        if self.dag is not other.dag:
            a = self.dag.dag_id if self.dag else None
            b = other.dag.dag_id if other.dag else None
            raise DagDefinitionError(
                f"tasks '{self.task_id}' (DAG {a!r}) and '{other.task_id}' (DAG {b!r}) are in different DAGs"
            )
        self.downstream_task_ids.add(other.task_id)
        other.upstream_task_ids.add(self.task_id)

    def set_downstream(self, other: BaseOperator | Sequence[BaseOperator]) -> None:
        for task in other if isinstance(other, Sequence) else [other]:
            self._link(task)

    def set_upstream(self, other: BaseOperator | Sequence[BaseOperator]) -> None:
        for task in other if isinstance(other, Sequence) else [other]:
            task._link(self)

    def __rshift__(self, other: Any) -> Any:
        self.set_downstream(other)
        return other

    def __lshift__(self, other: Any) -> Any:
        self.set_upstream(other)
        return other

    def __rrshift__(self, other: Any) -> BaseOperator:
        """[a, b] >> self."""
        self.set_upstream(other)
        return self

    def __rlshift__(self, other: Any) -> BaseOperator:
        """[a, b] << self."""
        self.set_downstream(other)
        return self

    # --- running ---------------------------------------------------------------------

    def render_template_fields(self, context: dict[str, Any], jinja_env: Any = None) -> None:
        """Renders every templated field in place with Jinja2 (undefined names are errors)."""
        for name in self.template_fields:
            setattr(self, name, render_value(getattr(self, name), context, jinja_env))

    def execute(self, context: dict[str, Any]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement execute()")

    def retry_delay_for(self, try_number: int) -> dt.timedelta:
        return retry_delay_for(self.retry_delay, self.retry_exponential_backoff, self.max_retry_delay, try_number)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.task_id}>"


def retry_delay_for(
    delay: dt.timedelta | None, exponential: bool, cap: dt.timedelta | None, try_number: int
) -> dt.timedelta:
    """The wait before the try after `try_number`: fixed, or doubling per try up to the cap."""
    base = delay or dt.timedelta(0)
    if exponential:
        base = base * (2 ** max(try_number - 1, 0))
    if cap is not None and base > cap:
        base = cap
    return base


def _as_timedelta(value: Any, where: str, name: str) -> dt.timedelta | None:
    if value is None or isinstance(value, dt.timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.timedelta(seconds=value)
    raise DagDefinitionError(f"{where}: {name} must be a timedelta or seconds, not {value!r}")


def _check_executor_config(config: Any, where: str) -> dict[str, Any]:
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise DagDefinitionError(f"{where}: executor_config must be a dict")
    unknown = set(config) - EXECUTOR_CONFIG_KEYS
    if unknown:
        raise DagDefinitionError(
            f"{where}: unknown executor_config key(s) {sorted(unknown)}; allowed: {sorted(EXECUTOR_CONFIG_KEYS)}"
        )
    for key in ("request_memory", "request_cpu", "limit_memory", "limit_cpu"):
        if key in config and not _QUANTITY.match(str(config[key])):
            raise DagDefinitionError(
                f"{where}: executor_config {key}={config[key]!r} is not a quantity like 512Mi or 500m"
            )
    env = config.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise DagDefinitionError(f"{where}: executor_config env must map strings to strings")
    if "pod_override" in config and not isinstance(config["pod_override"], dict):
        raise DagDefinitionError(f"{where}: executor_config pod_override must be a dict")
    return dict(config)


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

    def execute(self, context: dict[str, Any]) -> Any:
        context = {**context, "templates_dict": self.templates_dict}
        kwargs = dict(self.op_kwargs)
        signature = inspect.signature(self.python_callable)
        takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
        for name, value in context.items():
            if name in kwargs:
                continue
            if takes_all or name in signature.parameters:
                kwargs[name] = value
        return self.python_callable(*self.op_args, **kwargs)


class BashOperator(BaseOperator):
    """Runs a command with bash, streaming its output. Exit code 99 skips the task."""

    template_fields = ("bash_command", "env")
    skip_on_exit_code = 99

    def __init__(
        self,
        task_id: str,
        bash_command: str,
        env: dict[str, str] | None = None,
        append_env: bool = True,
        cwd: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id, **kwargs)
        self.bash_command = bash_command
        self.env = env
        self.append_env = append_env
        self.cwd = cwd

    def execute(self, context: dict[str, Any]) -> Any:
        env = {**os.environ, **(self.env or {})} if self.append_env or self.env is None else dict(self.env)
        proc = subprocess.Popen(
            ["bash", "-c", self.bash_command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.cwd,
            text=True,
            errors="replace",
        )
        last = ""
        assert proc.stdout is not None
        try:
            with proc.stdout:
                for line in proc.stdout:
                    sys.stdout.write(line)
                    sys.stdout.flush()
                    last = line.rstrip("\n")
            rc = proc.wait()
        except BaseException:  # timeout or kill of the task: take the command down with it
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
        if rc == self.skip_on_exit_code:
            raise SkipTask(f"Bash command returned exit code {rc}: skipping")
        if rc != 0:
            raise RuntimeError(f"Bash command failed. The command returned a non-zero exit code {rc}.")
        return last

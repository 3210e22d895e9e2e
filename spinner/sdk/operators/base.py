"""BaseOperator: one task of a DAG, with dependencies, retries and templating."""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from spinner.podpolicy import PodPolicyError, check_pod_override
from spinner.sdk import parse_state
from spinner.sdk.callbacks import TASK_CALLBACKS, Callbacks, as_callbacks, as_emails
from spinner.sdk.dag import DAG, ID_RE, current_dag
from spinner.sdk.dependencies import DependencyMixin
from spinner.sdk.exceptions import DagDefinitionError
from spinner.sdk.params import check_params
from spinner.sdk.trigger_rule import TriggerRule
from spinner.sdk.xcom_arg import as_operator, link_xcom_args

if TYPE_CHECKING:
    from spinner.sdk.mapping import ExpandInput, OperatorPartial
    from spinner.sdk.taskgroup import TaskGroup

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
    "doc_md": "",
    "start_date": None,
    "end_date": None,
    "do_xcom_push": True,
    "depends_on_past": False,
    "wait_for_downstream": False,
    # Callbacks and email on failure / retry (spinner/sdk/callbacks.py), run by the task's runner.
    "on_execute_callback": None,
    "on_success_callback": None,
    "on_failure_callback": None,
    "on_retry_callback": None,
    "on_skipped_callback": None,
    "email": None,
    "email_on_failure": True,
    "email_on_retry": True,
}

# Parameters of an operator's __init__ that default_args never fill.
_NOT_DEFAULTABLE = frozenset({"self", "task_id", "dag", "task_group", "unknown", "kwargs"})


def _own_parameters(init: Callable[..., None]) -> tuple[str, ...]:
    return tuple(
        name
        for name, p in inspect.signature(init).parameters.items()
        if name not in _NOT_DEFAULTABLE
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )


def _with_default_args(init: Callable[..., None]) -> Callable[..., None]:
    """Wraps a subclass's __init__ so the DAG's default_args fill its own parameters the caller left out
    (Airflow's rule: `default_args={"bash_command": ...}` reaches every BashOperator)."""
    signature = inspect.signature(init)
    names = _own_parameters(init)

    @functools.wraps(init)
    def wrapper(self: BaseOperator, *args: Any, **kwargs: Any) -> None:
        from spinner.sdk.taskgroup import default_args_for

        dag = kwargs.get("dag") or current_dag()
        defaults = default_args_for(dag)
        if defaults:
            try:
                given = signature.bind_partial(self, *args, **kwargs).arguments
            except TypeError:
                given = kwargs
            for name in names:
                if name not in given and name in defaults:
                    kwargs[name] = defaults[name]
        init(self, *args, **kwargs)

    wrapper.__spinner_defaults__ = True  # type: ignore[attr-defined]
    return wrapper


def accepted_arguments(cls: type[BaseOperator]) -> frozenset[str]:
    """Every keyword an operator class takes through its __init__ chain: what default_args may name."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None and klass is not object:
            names.update(_own_parameters(getattr(init, "__wrapped__", init)))
    return frozenset(names)


class BaseOperator(DependencyMixin):
    """One task of a DAG. Subclasses implement `execute(context)`."""

    template_fields: Sequence[str] = ()
    # A templated string ending with one of these names a template file (spinner/sdk/rendering.py).
    template_ext: Sequence[str] = ()
    # Capability: the scheduler ends this task itself (none -> success), no process is started (EmptyOperator).
    ends_in_scheduler: ClassVar[bool] = False

    # Set on a mapped task (`.partial(...).expand(...)`, spinner/sdk/mapping.py): what it maps over.
    expand_input: ExpandInput | None = None

    @property
    def is_mapped(self) -> bool:
        return self.expand_input is not None

    @classmethod
    def partial(cls, **kwargs: Any) -> OperatorPartial:
        """The fixed arguments of a mapped task; `.expand(name=[...])` gives the mapped ones."""
        from spinner.sdk.mapping import OperatorPartial, link_inputs

        task_id = kwargs.get("task_id")
        if not isinstance(task_id, str):
            raise DagDefinitionError(f"{cls.__name__}.partial(...) needs task_id=...")

        def build(placeholders: dict[str, Any], expand_input: ExpandInput) -> BaseOperator:
            task = cls(**kwargs, **placeholders)
            task.expand_input = expand_input
            link_inputs(task, expand_input)
            return task

        return OperatorPartial(build, f"task '{task_id}'", kwargs, accepted_arguments(cls))

    def expand(self, **kwargs: Any) -> Any:
        raise DagDefinitionError(
            f"task '{self.task_id}': .expand(...) is called on .partial(...), as "
            f"`{type(self).__name__}.partial(task_id=...).expand(...)`, not on a task"
        )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "__spinner_defaults__", False):
            cls.__init__ = _with_default_args(init)  # type: ignore[method-assign]

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
        doc_md: str = _UNSET,
        start_date: dt.datetime | None = _UNSET,
        end_date: dt.datetime | None = _UNSET,
        on_execute_callback: Any = _UNSET,
        on_success_callback: Any = _UNSET,
        on_failure_callback: Any = _UNSET,
        on_retry_callback: Any = _UNSET,
        on_skipped_callback: Any = _UNSET,
        email: str | list[str] | None = _UNSET,
        email_on_failure: bool = _UNSET,
        email_on_retry: bool = _UNSET,
        depends_on_past: bool = _UNSET,
        wait_for_downstream: bool = _UNSET,
        do_xcom_push: bool = _UNSET,
        task_group: TaskGroup | None = None,
        **unknown: Any,
    ) -> None:
        from spinner.sdk.taskgroup import current_task_group, default_args_for

        dag = dag or (task_group.dag if task_group is not None else None) or current_dag()
        dag_name = dag.dag_id if dag else "?"
        if unknown:
            from spinner.sdk.arguments import unknown_arguments

            file = (dag.fileloc if dag else "").rsplit("/", 1)[-1]
            raise unknown_arguments(
                f"DAG '{dag_name}'{' in ' + file if file else ''}, task '{task_id}'",
                type(self).__name__,
                unknown,
                accepted_arguments(type(self)),
            )
        if not isinstance(task_id, str) or not ID_RE.match(task_id):
            raise DagDefinitionError(
                f"DAG '{dag_name}': task id {task_id!r} must be 1-250 letters, digits, '_', '-' or '.'"
            )
        group = task_group if task_group is not None else current_task_group(dag)
        if group is not None:
            task_id = group.child_id(task_id)
            if not ID_RE.match(task_id):
                raise DagDefinitionError(f"DAG '{dag_name}': task id {task_id!r} is longer than 250 characters")
        self.task_id = task_id
        self.task_group: TaskGroup | None = group
        given: dict[str, Any] = {
            "retries": retries, "retry_delay": retry_delay,
            "retry_exponential_backoff": retry_exponential_backoff, "max_retry_delay": max_retry_delay,
            "execution_timeout": execution_timeout, "trigger_rule": trigger_rule,
            "executor_config": executor_config, "owner": owner, "params": params,
            "priority_weight": priority_weight, "pool": pool, "doc": doc, "doc_md": doc_md,
            "start_date": start_date, "end_date": end_date, "do_xcom_push": do_xcom_push,
            "depends_on_past": depends_on_past, "wait_for_downstream": wait_for_downstream,
            "on_execute_callback": on_execute_callback, "on_success_callback": on_success_callback,
            "on_failure_callback": on_failure_callback, "on_retry_callback": on_retry_callback,
            "on_skipped_callback": on_skipped_callback, "email": email,
            "email_on_failure": email_on_failure, "email_on_retry": email_on_retry,
        }  # fmt: skip
        defaults = default_args_for(dag)
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
        self.params = check_params(dag_name, values["params"], task_id)
        self.priority_weight = int(values["priority_weight"])
        self.pool = str(values["pool"])
        self.doc = str(values["doc"] or values["doc_md"])
        self.start_date = _as_datetime(values["start_date"], where, "start_date")
        self.end_date = _as_datetime(values["end_date"], where, "end_date")
        self.do_xcom_push = bool(values["do_xcom_push"])  # the return value becomes the XCom return_value
        # Airflow's rule: waiting for the previous run's downstream implies depending on the past.
        self.wait_for_downstream = bool(values["wait_for_downstream"])
        self.depends_on_past = bool(values["depends_on_past"]) or self.wait_for_downstream
        callbacks = {name: as_callbacks(values[name], where, name) for name in TASK_CALLBACKS}
        self.on_execute_callback: Callbacks = callbacks["on_execute_callback"]
        self.on_success_callback: Callbacks = callbacks["on_success_callback"]
        self.on_failure_callback: Callbacks = callbacks["on_failure_callback"]
        self.on_retry_callback: Callbacks = callbacks["on_retry_callback"]
        self.on_skipped_callback: Callbacks = callbacks["on_skipped_callback"]
        self.email = as_emails(values["email"], where)
        self.email_on_failure = bool(values["email_on_failure"])
        self.email_on_retry = bool(values["email_on_retry"])
        self.upstream_task_ids: set[str] = set()
        self.downstream_task_ids: set[str] = set()
        self.dag: DAG | None = None
        if dag is not None:
            self.dag = dag
            dag.add_task(self)
        if group is not None:
            group.add(self)

    # --- dependencies ----------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        # An XComArg in a templated field (op_args, bash_command, ...) makes this task its task's downstream.
        if name in type(self).template_fields and "upstream_task_ids" in self.__dict__:
            link_xcom_args(self, value)

    def _link(self, other: BaseOperator) -> None:
        """self >> other."""
        other = as_operator(other)
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

    def set_downstream(self, other: Any) -> None:
        """self >> other: a task, a TaskGroup (its roots), or a list of them."""
        for item in map(as_operator, _items(other)):
            if isinstance(item, BaseOperator):
                self._link(item)
            elif hasattr(item, "set_upstream"):  # a TaskGroup: it links its roots
                item.set_upstream(self)
            else:
                raise TypeError(f"cannot set a dependency between task '{self.task_id}' and {item!r}")

    def set_upstream(self, other: Any) -> None:
        """other >> self: a task, a TaskGroup (its leaves), or a list of them."""
        for item in map(as_operator, _items(other)):
            if isinstance(item, BaseOperator):
                item._link(self)
            elif hasattr(item, "set_downstream"):
                item.set_downstream(self)
            else:
                raise TypeError(f"cannot set a dependency between {item!r} and task '{self.task_id}'")

    # --- running ---------------------------------------------------------------------

    def render_template_fields(self, context: dict[str, Any], jinja_env: Any = None) -> None:
        """Renders every templated field in place with Jinja2 (undefined names are errors)."""
        from spinner.sdk.rendering import render_task_fields

        render_task_fields(self, context, jinja_env)

    def execute(self, context: dict[str, Any]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement execute()")

    def retry_delay_for(self, try_number: int) -> dt.timedelta:
        return retry_delay_for(self.retry_delay, self.retry_exponential_backoff, self.max_retry_delay, try_number)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.task_id}>"


def _items(other: Any) -> list[Any]:
    if isinstance(other, Sequence) and not isinstance(other, str):
        return list(other)
    return [other]


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


def _as_datetime(value: Any, where: str, name: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        raise DagDefinitionError(f"{where}: {name} must be a datetime, not {value!r}")
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


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
    policy = parse_state.pod_policy()
    if policy is not None and config.get("pod_override"):
        try:
            check_pod_override(config["pod_override"], policy)
        except PodPolicyError as e:
            raise DagDefinitionError(f"{where}: executor_config {e}") from None
    return dict(config)

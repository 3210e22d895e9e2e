"""The DAG: a set of tasks with dependencies, a schedule and the platform's metadata (tier, ACL)."""

from __future__ import annotations

import contextvars
import datetime as dt
import inspect
import re
from collections.abc import Iterator
from enum import IntEnum
from types import TracebackType
from typing import TYPE_CHECKING, Any

from spinner.sdk.callbacks import Deadline, as_callbacks
from spinner.sdk.exceptions import DagDefinitionError
from spinner.sdk.params import Param, check_params
from spinner.sdk.timetable import Schedule, Timetable, localize, zone_from_name, zone_name

if TYPE_CHECKING:
    from spinner.sdk.operators import BaseOperator
    from spinner.sdk.taskgroup import TaskGroup

ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,250}$")
PERMISSIONS = frozenset({"can_dag_read", "can_dag_edit"})

_current_dags: contextvars.ContextVar[tuple[DAG, ...]] = contextvars.ContextVar("spinner_dags", default=())


class Tier(IntEnum):
    """How important a DAG is: 1 most. Must match the tier of the partition folder it lives in."""

    TIER1 = 1
    TIER2 = 2
    TIER3 = 3


def current_dag() -> DAG | None:
    """The innermost DAG of the `with DAG(...)` blocks being executed, if any."""
    stack = _current_dags.get()
    return stack[-1] if stack else None


def _caller_file() -> str:
    for frame in inspect.stack()[2:]:
        if not frame.filename.startswith(str(__file__).rsplit("/", 1)[0]):
            return frame.filename
    return ""


def dag_timezone(dag_id: str, timezone: str | dt.tzinfo | None, start_date: dt.datetime | None) -> str:
    """The DAG's zone name: the `timezone` argument, else the zone of its start_date, else UTC."""
    try:
        if timezone is not None:
            return zone_name(zone_from_name(timezone)) if isinstance(timezone, str) else zone_name(timezone)
        if start_date is not None and start_date.tzinfo is not None:
            return zone_name(start_date.tzinfo)
    except ValueError as e:
        raise DagDefinitionError(f"DAG '{dag_id}': {e}") from None
    return "UTC"


class DAG:
    def __init__(
        self,
        dag_id: str,
        tier: Tier | int | None = None,
        schedule: Schedule = None,
        start_date: dt.datetime | None = None,
        catchup: bool = False,
        default_args: dict[str, Any] | None = None,
        access_control: dict[str, set[str] | list[str] | tuple[str, ...]] | None = None,
        max_active_runs: int = 16,
        max_active_tasks: int = 16,
        tags: list[str] | None = None,
        owner: str = "spinner",
        description: str = "",
        params: dict[str, Any] | None = None,
        dagrun_timeout: dt.timedelta | None = None,
        fileloc: str | None = None,
        on_success_callback: Any = None,
        on_failure_callback: Any = None,
        deadline: Deadline | None = None,
        timezone: str | dt.tzinfo | None = None,
        template_searchpath: str | list[str] | None = None,
        user_defined_macros: dict[str, Any] | None = None,
        user_defined_filters: dict[str, Any] | None = None,
        render_template_as_native_obj: bool = False,
        template_undefined: Any = None,
        **unknown: Any,
    ) -> None:
        if not isinstance(dag_id, str) or not ID_RE.match(dag_id):
            raise DagDefinitionError(f"DAG {dag_id!r}: dag_id must be 1-250 letters, digits, '_', '-' or '.'")
        self.dag_id = dag_id
        if unknown:
            from spinner.sdk.arguments import unknown_arguments

            file = (fileloc or _caller_file()).rsplit("/", 1)[-1]
            accepted = [n for n in inspect.signature(DAG.__init__).parameters if n not in ("self", "unknown")]
            raise unknown_arguments(f"DAG '{dag_id}' in {file}", "DAG", unknown, accepted)
        if tier is None:
            raise DagDefinitionError(f"DAG '{dag_id}': tier is required (tier=Tier.TIER1 .. Tier.TIER3)")
        try:
            self.tier = Tier(int(tier))
        except (ValueError, TypeError):
            raise DagDefinitionError(f"DAG '{dag_id}': tier must be 1, 2 or 3, not {tier!r}") from None
        self.schedule = schedule
        self.default_args = dict(default_args or {})
        if start_date is None:
            # Airflow's rule: a start_date in default_args is the DAG's when the DAG names none.
            start_date = self.default_args.get("start_date")
            if start_date is not None and not isinstance(start_date, dt.datetime):
                raise DagDefinitionError(f"DAG '{dag_id}': default_args start_date must be a datetime")
        self.timezone_name = dag_timezone(dag_id, timezone, start_date)
        self.timezone: dt.tzinfo = zone_from_name(self.timezone_name)  # Airflow's dag.timezone
        if start_date is not None and start_date.tzinfo is None:
            # A naive start_date is a wall time in the DAG's zone (UTC unless `timezone` says otherwise).
            start_date = localize(start_date, self.timezone)
        self.start_date = start_date
        try:
            self.timetable = Timetable(schedule, self.timezone_name)
        except ValueError as e:
            raise DagDefinitionError(f"DAG '{dag_id}': {e}") from None
        self.template_searchpath = (
            [template_searchpath] if isinstance(template_searchpath, str) else list(template_searchpath or [])
        )
        self.user_defined_macros = dict(user_defined_macros or {})
        self.user_defined_filters = dict(user_defined_filters or {})
        self.render_template_as_native_obj = bool(render_template_as_native_obj)
        self.template_undefined = template_undefined
        self.catchup = bool(catchup)
        self.access_control = self._check_acl(access_control)
        for name, value in (("max_active_runs", max_active_runs), ("max_active_tasks", max_active_tasks)):
            if not isinstance(value, int) or value < 1:
                raise DagDefinitionError(f"DAG '{dag_id}': {name} must be a positive integer, not {value!r}")
        self.max_active_runs = max_active_runs
        self.max_active_tasks = max_active_tasks
        self.tags = list(tags or [])
        self.owner = owner
        self.description = description
        self.params = check_params(dag_id, params)
        required = [n for n, p in self.params.items() if isinstance(p, Param) and not p.has_value]
        if required and schedule is not None:
            # Airflow's rule: a scheduled run has no conf, so it could never fill them.
            raise DagDefinitionError(
                f"DAG '{dag_id}': param(s) {', '.join(required)} have no default, so the DAG can only be "
                f"triggered (schedule=None); give them defaults to schedule it"
            )
        self.dagrun_timeout = dagrun_timeout
        self.fileloc = fileloc or _caller_file()
        where = f"DAG '{dag_id}'"
        self.on_success_callback = as_callbacks(on_success_callback, where, "on_success_callback")
        self.on_failure_callback = as_callbacks(on_failure_callback, where, "on_failure_callback")
        if deadline is not None and not isinstance(deadline, Deadline):
            raise DagDefinitionError(f"{where}: deadline must be a Deadline(after=..., reference=..., notifier=...)")
        self.deadline = deadline.check(where) if deadline is not None else None
        self.task_dict: dict[str, BaseOperator] = {}
        self.task_groups: dict[str, TaskGroup] = {}
        self._token: contextvars.Token[tuple[DAG, ...]] | None = None

    def _check_acl(self, acl: dict[str, set[str] | list[str] | tuple[str, ...]] | None) -> dict[str, frozenset[str]]:
        result: dict[str, frozenset[str]] = {}
        for role, perms in (acl or {}).items():
            perms_set = frozenset([perms] if isinstance(perms, str) else perms)
            unknown = perms_set - PERMISSIONS
            if unknown:
                raise DagDefinitionError(
                    f"DAG '{self.dag_id}': unknown permission(s) {sorted(unknown)} for role {role!r}; "
                    f"allowed: {sorted(PERMISSIONS)}"
                )
            result[str(role)] = perms_set
        return result

    # --- context manager -----------------------------------------------------------------

    def __enter__(self) -> DAG:
        self._token = _current_dags.set((*_current_dags.get(), self))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None:
            _current_dags.reset(self._token)
            self._token = None

    # --- tasks ---------------------------------------------------------------------------

    def add_task(self, task: BaseOperator) -> None:
        if task.task_id in self.task_dict and self.task_dict[task.task_id] is not task:
            raise DagDefinitionError(f"DAG '{self.dag_id}': duplicate task id '{task.task_id}'")
        self.task_dict[task.task_id] = task

    @property
    def tasks(self) -> list[BaseOperator]:
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_dict)

    def get_task(self, task_id: str) -> BaseOperator:
        try:
            return self.task_dict[task_id]
        except KeyError:
            raise DagDefinitionError(f"DAG '{self.dag_id}': no task '{task_id}'") from None

    @property
    def roots(self) -> list[BaseOperator]:
        return [t for t in self.tasks if not t.upstream_task_ids]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [t for t in self.tasks if not t.downstream_task_ids]

    def topological_sort(self) -> list[BaseOperator]:
        """Tasks with every upstream before its downstream; raises on a cycle."""
        return [self.task_dict[t] for t in self._order()]

    def _order(self) -> list[str]:
        done: list[str] = []
        state: dict[str, int] = {}  # 1 visiting, 2 done

        def visit(task_id: str, path: list[str]) -> None:
            if state.get(task_id) == 2:
                return
            if state.get(task_id) == 1:
                cycle = [*path[path.index(task_id) :], task_id]
                raise DagDefinitionError(f"DAG '{self.dag_id}': cycle between tasks {' >> '.join(cycle)}")
            state[task_id] = 1
            for up in sorted(self.task_dict[task_id].upstream_task_ids):
                visit(up, [*path, task_id])
            state[task_id] = 2
            done.append(task_id)

        for task_id in sorted(self.task_dict):
            visit(task_id, [])
        return done

    def validate(self) -> None:
        """Raises DagDefinitionError for what a DAG must not be (a cycle, dangling dependencies)."""
        for task in self.tasks:
            for other in task.upstream_task_ids | task.downstream_task_ids:
                if other not in self.task_dict:
                    raise DagDefinitionError(
                        f"DAG '{self.dag_id}': task '{task.task_id}' depends on unknown task '{other}'"
                    )
        self._order()
        self._check_default_args()

    def _check_default_args(self) -> None:
        """A default_args key that no task of this DAG takes is a mistake (Airflow drops it silently)."""
        from spinner.sdk.operators.base import BaseOperator, accepted_arguments

        accepted = set(accepted_arguments(BaseOperator))
        for cls in {type(t) for t in self.tasks}:
            accepted |= accepted_arguments(cls)
        given = set(self.default_args).union(*(g.default_args for g in self.task_groups.values()))
        unknown = sorted(given - accepted)
        if unknown:
            where = f" in {self.fileloc.rsplit('/', 1)[-1]}" if self.fileloc else ""
            raise DagDefinitionError(
                f"DAG '{self.dag_id}'{where}: unknown default_args key(s) {unknown}: no task of this DAG "
                f"takes them (task arguments: {', '.join(sorted(accepted))})"
            )

    def __iter__(self) -> Iterator[BaseOperator]:
        return iter(self.tasks)

    def __repr__(self) -> str:
        return f"<DAG {self.dag_id} tier={int(self.tier)} tasks={len(self.task_dict)}>"

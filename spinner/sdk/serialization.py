"""DAGs to JSON and back. The scheduler works from this form only; it never imports DAG files.

`serialize_dag` reads the same attribute names from a live DAG and from a SerializedDAG,
so `serialize_dag(deserialize_dag(data)) == data` for every field.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from spinner.sdk.callbacks import callback_info
from spinner.sdk.operators.base import retry_delay_for
from spinner.sdk.params import Param
from spinner.sdk.timetable import Schedule, Timetable, schedule_from_str, schedule_to_str

FORMAT_VERSION = 1


def encode(value: Any) -> Any:
    """JSON-able form of values found in DAG and task arguments (timedeltas, datetimes, sets)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Param):
        return value.dump()
    if isinstance(value, dt.timedelta):
        return {"__type": "timedelta", "seconds": value.total_seconds()}
    if isinstance(value, dt.datetime):
        return {"__type": "datetime", "iso": value.isoformat()}
    if isinstance(value, set | frozenset):
        return {"__type": "set", "items": sorted((encode(v) for v in value), key=repr)}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if callable(value):
        return {
            "__type": "callable",
            "name": f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}",
        }
    return {"__type": "repr", "repr": repr(value)}


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        kind = value.get("__type")
        if kind == "timedelta":
            return dt.timedelta(seconds=value["seconds"])
        if kind == "datetime":
            return dt.datetime.fromisoformat(value["iso"])
        if kind == "set":
            return {decode(v) for v in value["items"]}
        if kind == "param":
            return Param.load(value)
        if kind in ("callable", "repr"):
            return value  # kept in its encoded form: it cannot be rebuilt outside the DAG file
        return {k: decode(v) for k, v in value.items()}
    return value


def _seconds(value: dt.timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


def _delta(value: float | None) -> dt.timedelta | None:
    return dt.timedelta(seconds=value) if value is not None else None


@dataclass(frozen=True)
class SerializedTask:
    task_id: str
    operator: str
    upstream_task_ids: frozenset[str]
    downstream_task_ids: frozenset[str]
    trigger_rule: str
    retries: int
    retry_delay: dt.timedelta | None
    retry_exponential_backoff: bool
    max_retry_delay: dt.timedelta | None
    execution_timeout: dt.timedelta | None
    executor_config: dict[str, Any]
    owner: str
    params: dict[str, Any]
    priority_weight: int
    pool: str
    doc: str
    template_fields: tuple[str, ...] = ()
    templates: dict[str, Any] = field(default_factory=dict)
    callable_name: str | None = None
    # Full id of the innermost TaskGroup the task is in (None outside groups).
    task_group: str | None = None
    depends_on_past: bool = False
    wait_for_downstream: bool = False
    ends_in_scheduler: bool = False  # EmptyOperator: no process, the scheduler ends it
    # A time sensor in reschedule mode, decided by the scheduler without a process (docs/adr/0006-sensor-reschedule.md).
    timed_wait: dict[str, Any] | None = None
    # A mapped task's arguments (spinner/sdk/mapping.py ExpandInput.serialize): each {"name", "length"}
    # for a literal, or {"name", "task_id", "key"} for an upstream XCom. None: not mapped.
    expand: tuple[dict[str, Any], ...] | None = None

    @property
    def is_mapped(self) -> bool:
        return self.expand is not None

    def retry_delay_for(self, try_number: int) -> dt.timedelta:
        return retry_delay_for(self.retry_delay, self.retry_exponential_backoff, self.max_retry_delay, try_number)


@dataclass(frozen=True)
class SerializedDAG:
    dag_id: str
    tier: int
    schedule: Schedule
    start_date: dt.datetime | None
    catchup: bool
    default_args: dict[str, Any]
    access_control: dict[str, frozenset[str]]
    max_active_runs: int
    max_active_tasks: int
    tags: list[str]
    owner: str
    description: str
    params: dict[str, Any]
    dagrun_timeout: dt.timedelta | None
    fileloc: str
    tasks: dict[str, SerializedTask]
    # TaskGroup id -> the id of the group it is in (None: at the top).
    task_groups: dict[str, str | None] = field(default_factory=dict)
    timezone_name: str = "UTC"
    # Which DAG callbacks and deadline it declares (spinner/sdk/callbacks.py callback_info).
    callbacks: dict[str, Any] = field(default_factory=dict)

    @property
    def timetable(self) -> Timetable:
        return Timetable(self.schedule, self.timezone_name)

    @property
    def task_dict(self) -> dict[str, SerializedTask]:
        return self.tasks


def _task_dict(task: Any) -> dict[str, Any]:
    if isinstance(task, SerializedTask):
        templates, callable_name, fields = task.templates, task.callable_name, list(task.template_fields)
        operator, group, timed_wait = task.operator, task.task_group, task.timed_wait
        expand = list(task.expand) if task.expand is not None else None
    else:
        fields = list(task.template_fields)
        templates = {name: encode(getattr(task, name)) for name in fields}
        fn = getattr(task, "python_callable", None)
        callable_name = encode(fn)["name"] if fn is not None else None
        operator = type(task).__name__
        group = task.task_group.group_id if task.task_group is not None else None
        timed_wait = task.timed_wait() if callable(getattr(task, "timed_wait", None)) else None
        expand = task.expand_input.serialize() if task.expand_input is not None else None
    # Absent for every other task: the hash of a DAG without them stays as it was.
    extra: dict[str, Any] = {"timed_wait": timed_wait} if timed_wait is not None else {}
    if expand is not None:
        extra["expand"] = expand
    return extra | {
        "task_id": task.task_id,
        "operator": operator,
        "upstream_task_ids": sorted(task.upstream_task_ids),
        "downstream_task_ids": sorted(task.downstream_task_ids),
        "trigger_rule": str(task.trigger_rule),
        "retries": task.retries,
        "retry_delay": _seconds(task.retry_delay),
        "retry_exponential_backoff": task.retry_exponential_backoff,
        "max_retry_delay": _seconds(task.max_retry_delay),
        "execution_timeout": _seconds(task.execution_timeout),
        "executor_config": encode(task.executor_config),
        "owner": task.owner,
        "params": encode(task.params),
        "priority_weight": task.priority_weight,
        "pool": task.pool,
        "doc": task.doc,
        "template_fields": fields,
        "templates": templates,
        "callable": callable_name,
        "task_group": group,
        "depends_on_past": task.depends_on_past,
        "wait_for_downstream": task.wait_for_downstream,
        "ends_in_scheduler": task.ends_in_scheduler,
    }


def serialize_dag(dag: Any) -> dict[str, Any]:
    """The JSON form of a DAG (a live DAG or a SerializedDAG)."""
    tasks = dag.tasks if isinstance(dag, SerializedDAG) else dag.task_dict
    callbacks = dag.callbacks if isinstance(dag, SerializedDAG) else callback_info(dag)
    data = {
        "__version": FORMAT_VERSION,
        "dag_id": dag.dag_id,
        "tier": int(dag.tier),
        "schedule": schedule_to_str(dag.schedule),
        "start_date": dag.start_date.isoformat() if dag.start_date else None,
        "catchup": dag.catchup,
        "default_args": encode(dag.default_args),
        "access_control": {role: sorted(perms) for role, perms in sorted(dag.access_control.items())},
        "max_active_runs": dag.max_active_runs,
        "max_active_tasks": dag.max_active_tasks,
        "tags": list(dag.tags),
        "owner": dag.owner,
        "description": dag.description,
        "params": encode(dag.params),
        "dagrun_timeout": _seconds(dag.dagrun_timeout),
        "fileloc": dag.fileloc,
        "timezone": dag.timezone_name,
        "tasks": [_task_dict(tasks[t]) for t in sorted(tasks)],
        "task_groups": _task_groups(dag),
    }
    if callbacks:  # only when declared: the hash of a DAG without any stays as it was
        data["callbacks"] = callbacks
    return data


def _task_groups(dag: Any) -> dict[str, str | None]:
    if isinstance(dag, SerializedDAG):
        return dict(dag.task_groups)
    return {
        gid: (g.parent_group.group_id if g.parent_group is not None else None)
        for gid, g in sorted(dag.task_groups.items())
    }


def deserialize_dag(data: dict[str, Any]) -> SerializedDAG:
    if data.get("__version") != FORMAT_VERSION:
        raise ValueError(f"unsupported serialized DAG version {data.get('__version')!r}")
    tasks = {
        t["task_id"]: SerializedTask(
            task_id=t["task_id"],
            operator=t["operator"],
            upstream_task_ids=frozenset(t["upstream_task_ids"]),
            downstream_task_ids=frozenset(t["downstream_task_ids"]),
            trigger_rule=t["trigger_rule"],
            retries=int(t["retries"]),
            retry_delay=_delta(t["retry_delay"]),
            retry_exponential_backoff=bool(t["retry_exponential_backoff"]),
            max_retry_delay=_delta(t["max_retry_delay"]),
            execution_timeout=_delta(t["execution_timeout"]),
            executor_config=decode(t["executor_config"]),
            owner=t["owner"],
            params=decode(t["params"]),
            priority_weight=int(t["priority_weight"]),
            pool=t["pool"],
            doc=t["doc"],
            template_fields=tuple(t["template_fields"]),
            templates=t["templates"],
            callable_name=t["callable"],
            task_group=t.get("task_group"),
            depends_on_past=bool(t.get("depends_on_past", False)),
            wait_for_downstream=bool(t.get("wait_for_downstream", False)),
            ends_in_scheduler=bool(t.get("ends_in_scheduler", False)),
            timed_wait=t.get("timed_wait"),
            expand=tuple(t["expand"]) if t.get("expand") is not None else None,
        )
        for t in data["tasks"]
    }
    return SerializedDAG(
        dag_id=data["dag_id"],
        tier=int(data["tier"]),
        schedule=schedule_from_str(data["schedule"]),
        start_date=dt.datetime.fromisoformat(data["start_date"]) if data["start_date"] else None,
        catchup=bool(data["catchup"]),
        default_args=decode(data["default_args"]),
        access_control={role: frozenset(perms) for role, perms in data["access_control"].items()},
        max_active_runs=int(data["max_active_runs"]),
        max_active_tasks=int(data["max_active_tasks"]),
        tags=list(data["tags"]),
        owner=data["owner"],
        description=data["description"],
        params=decode(data["params"]),
        dagrun_timeout=_delta(data["dagrun_timeout"]),
        fileloc=data["fileloc"],
        tasks=tasks,
        task_groups=dict(data.get("task_groups") or {}),
        timezone_name=data.get("timezone", "UTC"),
        callbacks=dict(data.get("callbacks") or {}),
    )


def dag_hash(data: dict[str, Any]) -> str:
    """sha256 of the canonical JSON: equal DAGs hash equal, whatever the key order."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

"""Jinja templating of task fields, and the context a task gets (Airflow's names)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jinja2

from spinner.mapping import NO_MAP_INDEX
from spinner.sdk.context import PreviousSuccess, time_context
from spinner.sdk.params import param_values
from spinner.sdk.varconn_context import varconn_context
from spinner.sdk.xcom import RuntimeTaskInstance
from spinner.sdk.xcom_arg import Resolvable

if TYPE_CHECKING:
    from spinner.sdk.dag import DAG
    from spinner.sdk.operators import BaseOperator


@dataclass(frozen=True)
class DagRunInfo:
    dag_id: str
    run_id: str
    logical_date: dt.datetime
    run_type: str
    conf: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskInstanceInfo:  # what `ti` was before it became spinner.sdk.xcom.RuntimeTaskInstance
    dag_id: str
    task_id: str
    run_id: str
    try_number: int


def make_env() -> jinja2.Environment:
    # StrictUndefined: a typo in a template fails the task with the name, instead of rendering "".
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


def render_value(value: Any, context: dict[str, Any], env: jinja2.Environment | None = None) -> Any:
    """Renders strings, recursively through lists, tuples and dicts; other values as they are."""
    env = env or make_env()
    if isinstance(value, Resolvable):  # an XComArg or a @dag param: its value in this run
        return value.resolve(context)
    if isinstance(value, str):
        return env.from_string(value).render(**context)
    if isinstance(value, list):
        return [render_value(v, context, env) for v in value]
    if isinstance(value, tuple):
        return tuple(render_value(v, context, env) for v in value)
    if isinstance(value, dict):
        return {k: render_value(v, context, env) for k, v in value.items()}
    return value


def build_context(
    dag: DAG,
    task: BaseOperator,
    *,
    run_id: str,
    logical_date: dt.datetime,
    data_interval_start: dt.datetime,
    data_interval_end: dt.datetime,
    conf: dict[str, Any],
    try_number: int,
    run_type: str,
    previous: PreviousSuccess | None = None,
    map_index: int = NO_MAP_INDEX,
) -> dict[str, Any]:
    """What templates and Python callables see. Run conf overrides params of the same name.
    `map_index`: the instance of a mapped task this try is (`ti.map_index`); -1 for an unmapped task."""
    declared = {**dag.params, **task.params}
    params = param_values(declared)
    params.update({k: v for k, v in conf.items() if k in declared})
    times = time_context(
        dag, logical_date=logical_date, data_interval_end=data_interval_end, run_type=run_type, previous=previous
    )
    ti = RuntimeTaskInstance(dag.dag_id, task.task_id, run_id, try_number, map_index, dag=dag)
    return {
        **times,
        "dag": dag,
        "task": task,
        "run_id": run_id,
        "logical_date": logical_date,
        "data_interval_start": data_interval_start,
        "data_interval_end": data_interval_end,
        "ds": logical_date.strftime("%Y-%m-%d"),
        "ds_nodash": logical_date.strftime("%Y%m%d"),
        "ts": logical_date.isoformat(),
        "ts_nodash": logical_date.strftime("%Y%m%dT%H%M%S"),
        "params": params,
        "conf": conf,
        "dag_run": DagRunInfo(dag.dag_id, run_id, logical_date, run_type, conf),
        "ti": ti,
        "task_instance": ti,
        "try_number": try_number,
        **varconn_context(),  # var, conn (spinner/sdk/varconn_context.py)
    }

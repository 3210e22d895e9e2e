"""ExternalTaskSensor: waits for another DAG's task (or whole run) to reach a state.

The state is read through the platform: the runner asks the executor (RunnerService.GetTaskState,
with this try's token), never the database.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from spinner.sdk.exceptions import DagDefinitionError, SkipTask
from spinner.sdk.operators.sensors._log import say
from spinner.sdk.operators.sensors.base import BaseSensorOperator


class ExternalTaskFailed(RuntimeError):
    """The external task or run reached one of the sensor's failed_states."""


class ExternalTaskSensor(BaseSensorOperator):
    """Succeeds when `external_dag_id`'s run at the same logical date (or `logical_date - execution_delta`,
    or `execution_date_fn(logical_date, context)`) has its task `external_task_id` (or, when None, the
    whole run) in `allowed_states`. A state in `failed_states` fails the sensor (skips it with
    soft_fail); one in `skipped_states` skips it."""

    def __init__(
        self,
        task_id: str,
        external_dag_id: str,
        external_task_id: str | None = None,
        allowed_states: Iterable[str] | None = None,
        failed_states: Iterable[str] | None = None,
        skipped_states: Iterable[str] | None = None,
        execution_delta: dt.timedelta | None = None,
        execution_date_fn: Callable[..., dt.datetime] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id, **kwargs)
        where = f"DAG '{self.dag.dag_id if self.dag else '?'}', task '{task_id}'"
        if not isinstance(external_dag_id, str) or not external_dag_id:
            raise DagDefinitionError(f"{where}: external_dag_id must be a DAG id")
        if execution_delta is not None and execution_date_fn is not None:
            raise DagDefinitionError(f"{where}: give execution_delta or execution_date_fn, not both")
        if execution_delta is not None and not isinstance(execution_delta, dt.timedelta):
            raise DagDefinitionError(f"{where}: execution_delta must be a timedelta")
        if execution_date_fn is not None and not callable(execution_date_fn):
            raise DagDefinitionError(f"{where}: execution_date_fn must be callable")
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        self.allowed_states = frozenset(allowed_states or ("success",))
        self.failed_states = frozenset(failed_states or ())
        self.skipped_states = frozenset(skipped_states or ())
        both = self.allowed_states & (self.failed_states | self.skipped_states)
        if both:
            raise DagDefinitionError(f"{where}: states {sorted(both)} are both allowed and failed/skipped")
        self.execution_delta = execution_delta
        self.execution_date_fn = execution_date_fn

    def external_logical_date(self, context: dict[str, Any]) -> dt.datetime:
        logical_date: dt.datetime = context["logical_date"]
        if self.execution_delta is not None:
            return logical_date - self.execution_delta
        if self.execution_date_fn is not None:
            fn = self.execution_date_fn
            takes_context = len(inspect.signature(fn).parameters) >= 2
            when = fn(logical_date, context) if takes_context else fn(logical_date)
            if not isinstance(when, dt.datetime):
                raise TypeError(f"execution_date_fn of {self.task_id} returned {when!r}, not a datetime")
            return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        return logical_date

    def poke(self, context: dict[str, Any]) -> bool:
        when = self.external_logical_date(context)
        what = f"{self.external_dag_id}.{self.external_task_id}" if self.external_task_id else self.external_dag_id
        from spinner.runner.client import current  # task time only: DAG files load without gRPC
        from spinner.v1 import executor_pb2

        client = current("ExternalTaskSensor")
        request = executor_pb2.RunnerGetTaskStateRequest(
            key=client.key, token=client.token, dag_id=self.external_dag_id,
            logical_date=when.isoformat(), task_id=self.external_task_id or "",
        )  # fmt: skip
        answer = client.call(client.stub.GetTaskState, request, "reading another DAG's state")
        if not answer.found:
            say(f"{what} at {when.isoformat()}: no such run or task instance yet")
            return False
        state = answer.state or "none"
        say(f"{what} ({answer.run_id}) is {state}")
        if state in self.failed_states:
            message = f"{what} ({answer.run_id}) is {state}, one of failed_states {sorted(self.failed_states)}"
            if self.soft_fail:
                raise SkipTask(message + "; skipped (soft_fail)")
            raise ExternalTaskFailed(message)
        if state in self.skipped_states:
            raise SkipTask(f"{what} ({answer.run_id}) is {state}, one of skipped_states")
        return state in self.allowed_states

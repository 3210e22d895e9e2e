"""TriggerDagRunOperator: starts a run of another DAG through the platform, and optionally waits for it.

The runner asks the executor (RunnerService.TriggerDagRun, with the try's token), which asks the
scheduler that owns the other DAG; the new run records this task as what triggered it, and the
trigger is audited as an action on that DAG. Task code never talks to a scheduler or the database.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from spinner.sdk.exceptions import DagDefinitionError, SkipTask
from spinner.sdk.operators.base import BaseOperator

RUN_STATES = frozenset({"queued", "running", "success", "failed"})


class DagRunAlreadyExists(RuntimeError):
    """The run to trigger exists, and neither reset_dag_run nor skip_when_already_exists was set."""


class TriggeredRunFailed(RuntimeError):
    """wait_for_completion: the triggered run reached one of failed_states."""


class TriggerDagRunOperator(BaseOperator):
    """Triggers a run of `trigger_dag_id` with `conf` (templated), at `logical_date` (now when None), with
    run id `trigger_run_id` (derived when None). When that run exists: `reset_dag_run=True` clears it so
    it runs again, `skip_when_already_exists=True` skips this task, otherwise the task fails.
    `wait_for_completion=True` polls every `poke_interval` seconds until the run reaches one of
    `allowed_states` (default success) or fails in one of `failed_states` (default failed).
    Returns the triggered run's id."""

    template_fields = ("trigger_dag_id", "trigger_run_id", "logical_date", "conf")

    def __init__(
        self,
        task_id: str,
        trigger_dag_id: str,
        trigger_run_id: str | None = None,
        conf: dict[str, Any] | None = None,
        logical_date: str | dt.datetime | None = None,
        reset_dag_run: bool = False,
        wait_for_completion: bool = False,
        poke_interval: float = 60,
        allowed_states: Sequence[str] | None = None,
        failed_states: Sequence[str] | None = None,
        skip_when_already_exists: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id, **kwargs)
        where = f"DAG '{self.dag.dag_id if self.dag else '?'}', task '{task_id}'"
        if not isinstance(trigger_dag_id, str) or not trigger_dag_id:
            raise DagDefinitionError(f"{where}: trigger_dag_id must be a DAG id")
        if conf is not None and not isinstance(conf, dict):
            raise DagDefinitionError(f"{where}: conf must be a dict, not {type(conf).__name__}")
        if logical_date is not None and not isinstance(logical_date, str | dt.datetime):
            raise DagDefinitionError(f"{where}: logical_date must be a datetime or an ISO 8601 string")
        if isinstance(poke_interval, bool) or not isinstance(poke_interval, int | float) or poke_interval <= 0:
            raise DagDefinitionError(f"{where}: poke_interval must be a positive number of seconds")
        self.allowed_states = _states(allowed_states, ["success"], where, "allowed_states")
        self.failed_states = _states(failed_states, ["failed"], where, "failed_states")
        both = set(self.allowed_states) & set(self.failed_states)
        if both:
            raise DagDefinitionError(f"{where}: {sorted(both)} cannot be both allowed and failed states")
        self.trigger_dag_id = trigger_dag_id
        self.trigger_run_id = trigger_run_id
        self.conf = conf
        self.logical_date = logical_date
        self.reset_dag_run = bool(reset_dag_run)
        self.wait_for_completion = bool(wait_for_completion)
        self.poke_interval = float(poke_interval)
        self.skip_when_already_exists = bool(skip_when_already_exists)

    def execute(self, context: dict[str, Any], sleep: Callable[[float], None] = time.sleep) -> Any:
        from spinner.runner import client as runner_client
        from spinner.v1 import executor_pb2

        client = runner_client.current("TriggerDagRunOperator")
        try:
            conf_json = json.dumps(self.conf or {})
        except TypeError as e:
            raise ValueError(f"conf of task '{self.task_id}' must be JSON-serializable: {e}") from None
        when = self.logical_date
        request = executor_pb2.RunnerTriggerDagRunRequest(
            key=client.key, token=client.token, trigger_dag_id=self.trigger_dag_id, conf_json=conf_json,
            logical_date=when.isoformat() if isinstance(when, dt.datetime) else (when or ""),
            trigger_run_id=self.trigger_run_id or "", reset_dag_run=self.reset_dag_run,
        )  # fmt: skip
        try:
            reply = client.call(client.stub.TriggerDagRun, request, f"triggering DAG {self.trigger_dag_id}")
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else None
            detail = e.details() if hasattr(e, "details") else str(e)
            if code == grpc.StatusCode.ALREADY_EXISTS:
                if self.skip_when_already_exists:
                    raise SkipTask(f"the run of {self.trigger_dag_id} already exists: {detail}") from None
                raise DagRunAlreadyExists(
                    f"{detail} (set reset_dag_run=True to run it again, or skip_when_already_exists=True)"
                ) from None
            raise RuntimeError(f"could not trigger DAG '{self.trigger_dag_id}': {detail}") from None
        what = "triggered" if reply.created else "cleared the existing"
        print(f"{what} run {reply.run_id} of DAG {self.trigger_dag_id} (logical date {reply.logical_date})", flush=True)
        if self.wait_for_completion:
            self._wait(client, reply.run_id, sleep)
        return reply.run_id

    def _wait(self, client: Any, run_id: str, sleep: Callable[[float], None]) -> None:
        from spinner.v1 import executor_pb2

        request = executor_pb2.RunnerGetDagRunRequest(
            key=client.key, token=client.token, dag_id=self.trigger_dag_id, run_id=run_id
        )
        while True:
            sleep(self.poke_interval)
            state = client.call(client.stub.GetDagRun, request, f"reading run {run_id} of {self.trigger_dag_id}").state
            print(f"waiting for run {run_id} of {self.trigger_dag_id}: {state}", flush=True)
            if state in self.failed_states:
                raise TriggeredRunFailed(f"{self.trigger_dag_id} failed with failed state {state}")
            if state in self.allowed_states:
                print(f"run {run_id} of {self.trigger_dag_id} ended: {state}", flush=True)
                return


def _states(value: Sequence[str] | None, default: list[str], where: str, name: str) -> list[str]:
    if value is None:
        return list(default)
    if isinstance(value, str):
        value = [value]
    states = [str(s) for s in value]
    unknown = sorted(set(states) - RUN_STATES)
    if unknown:
        raise DagDefinitionError(f"{where}: {name} {unknown} are not run states; use {sorted(RUN_STATES)}")
    return states

"""The task instance a running task sees as `ti` / `task_instance`, with Airflow's XCom methods.

Values go to and come from the executor's RunnerService with the try's token (spinner.runner.client):
task code never touches the database. A value must be JSON and at most the executor's
xcom_max_bytes (SPINNER_XCOM_MAX_BYTES in the runner's environment); otherwise the push raises
XComError, which fails the task with its message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import grpc

from spinner.sdk.xcom_arg import RETURN_VALUE
from spinner.v1 import executor_pb2

if TYPE_CHECKING:
    from spinner.sdk.operators.base import BaseOperator

DEFAULT_MAX_BYTES = 64 * 1024


class XComError(Exception):
    """An XCom could not be pushed or pulled: not JSON, too large, or refused by the executor."""


def encode(key: str, value: Any, where: str) -> str:
    """The value as JSON, or XComError naming the key and what is wrong."""
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise XComError(
            f"{where}: XCom '{key}' is not JSON-serializable ({type(value).__name__}: {e}); "
            "XComs hold JSON values only (dict, list, str, int, float, bool, None)"
        ) from None
    limit = int(os.environ.get("SPINNER_XCOM_MAX_BYTES") or DEFAULT_MAX_BYTES)
    size = len(text.encode())
    if size > limit:
        raise XComError(
            f"{where}: XCom '{key}' is {size} bytes of JSON, more than the limit of {limit} bytes (xcom_max_bytes)"
        )
    return text


class RuntimeTaskInstance:
    """The running try: its identity, and XCom push and pull through the executor."""

    def __init__(self, dag_id: str, task_id: str, run_id: str, try_number: int, map_index: int = -1) -> None:
        self.dag_id = dag_id
        self.task_id = task_id
        self.run_id = run_id
        self.try_number = try_number
        self.map_index = map_index

    def _where(self) -> str:
        return f"DAG '{self.dag_id}', task '{self.task_id}'"

    def xcom_push(self, key: str, value: Any) -> None:
        """Stores `value` (JSON) under `key` for this task instance; replaces an earlier value of the key."""
        from spinner.runner.client import current

        if not isinstance(key, str) or not key:
            raise XComError(f"{self._where()}: an XCom key must be a non-empty string, not {key!r}")
        text = encode(key, value, self._where())
        client = current("ti.xcom_push")
        request = executor_pb2.RunnerPushXComRequest(key=client.key, token=client.token, xcom_key=key, value_json=text)
        try:
            client.call(client.stub.PushXCom, request, f"pushing XCom '{key}'")
        except grpc.RpcError as e:
            raise XComError(f"{self._where()}: pushing XCom '{key}' failed: {_details(e)}") from None

    def xcom_pull(
        self,
        task_ids: str | Sequence[str] | None = None,
        dag_id: str | None = None,
        key: str = RETURN_VALUE,
        include_prior_dates: bool = False,
    ) -> Any:
        """Airflow's semantics: one task id gives its value, a list of them a list of values (in order);
        a value that was never pushed is None. No task_ids: this task. dag_id: another DAG's run with this
        run's run_id. include_prior_dates: the newest value of a run not after this one."""
        from spinner.runner.client import current

        single = task_ids is None or isinstance(task_ids, str)
        if task_ids is None:
            ids = [self.task_id]
        elif isinstance(task_ids, str):
            ids = [task_ids]
        else:
            ids = [str(t) for t in task_ids]
        if not ids:
            return []
        client = current("ti.xcom_pull")
        request = executor_pb2.RunnerPullXComRequest(
            key=client.key, token=client.token, dag_id=dag_id or "", task_ids=ids, xcom_key=key,
            include_prior_dates=include_prior_dates,
        )  # fmt: skip
        try:
            response = client.call(client.stub.PullXCom, request, f"pulling XCom '{key}'")
        except grpc.RpcError as e:
            raise XComError(f"{self._where()}: pulling XCom '{key}' of {ids} failed: {_details(e)}") from None
        values = [json.loads(item.value_json) if item.found else None for item in response.items]
        return values[0] if single else values

    def __repr__(self) -> str:
        return f"<TaskInstance {self.dag_id}.{self.task_id} {self.run_id} try {self.try_number}>"


def push_result(task: BaseOperator, ti: RuntimeTaskInstance, result: Any) -> None:
    """What a task's return value becomes (Airflow's rule): the XCom return_value unless do_xcom_push is
    off or it is None; with multiple_outputs a dict's items are also pushed, one XCom per key."""
    if result is None or not getattr(task, "do_xcom_push", True):
        return
    if getattr(task, "multiple_outputs", False):
        if not isinstance(result, dict):
            raise XComError(
                f"DAG '{ti.dag_id}', task '{ti.task_id}': multiple_outputs is set, so it must return a dict, "
                f"not {type(result).__name__}"
            )
        for k, v in result.items():
            if not isinstance(k, str):
                raise XComError(
                    f"DAG '{ti.dag_id}', task '{ti.task_id}': with multiple_outputs the returned dict's keys "
                    f"must be strings, not {k!r}"
                )
            ti.xcom_push(k, v)
    ti.xcom_push(RETURN_VALUE, result)


def _details(e: grpc.RpcError) -> str:
    details = e.details() if hasattr(e, "details") else None
    return str(details or e)

"""The task instance a running task sees as `ti` / `task_instance`, with Airflow's XCom methods.

Values go to and come from the executor's RunnerService with the try's token (spinner.runner.client):
task code never touches the database. A value must be JSON and at most the executor's
xcom_max_bytes (SPINNER_XCOM_MAX_BYTES in the runner's environment); otherwise the push raises
XComError, which fails the task with its message.

An instance of a mapped task pushes as itself (its map_index is in the try's key). Pulling a mapped
task gives the list of its instances' values in map_index order (only the instances that pushed),
or with `map_indexes=` one instance's value (an int) or those of a list of them, as Airflow does
(docs/adr/0007-dynamic-task-mapping.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from spinner.mapping import NO_MAP_INDEX
from spinner.sdk.xcom_arg import RETURN_VALUE
from spinner.v1 import executor_pb2

if TYPE_CHECKING:
    from spinner.sdk.dag import DAG
    from spinner.sdk.operators.base import BaseOperator

PullItem = executor_pb2.RunnerPullXComResponse.Item

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
    """The running try: its identity, and XCom push and pull through the executor.

    `dag` is the DAG the runner loaded: it says which tasks are mapped, so pulling one that pushed
    nothing gives [] rather than None."""

    def __init__(
        self,
        dag_id: str,
        task_id: str,
        run_id: str,
        try_number: int,
        map_index: int = NO_MAP_INDEX,
        *,
        dag: DAG | None = None,
    ) -> None:
        self.dag_id = dag_id
        self.task_id = task_id
        self.run_id = run_id
        self.try_number = try_number
        self.map_index = map_index
        self._dag = dag

    def _where(self) -> str:
        instance = f" [{self.map_index}]" if self.map_index >= 0 else ""
        return f"DAG '{self.dag_id}', task '{self.task_id}'{instance}"

    def _is_mapped(self, task_id: str, dag_id: str | None) -> bool | None:
        """Whether the runner's DAG maps the task; None when it cannot say (another DAG, no DAG)."""
        if self._dag is None or (dag_id and dag_id != self.dag_id):
            return None
        task = self._dag.task_dict.get(task_id)
        return None if task is None else bool(task.is_mapped)

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
        map_indexes: int | Iterable[int] | None = None,
    ) -> Any:
        """Airflow's semantics: one task id gives its value, a list of them a list of values (in order);
        a value that was never pushed is None. No task_ids: this task. dag_id: another DAG's run with this
        run's run_id. include_prior_dates: the newest value of a run not after this one.

        A mapped task's value is the list of its instances' values in map_index order (those that pushed
        the key; [] when none did). `map_indexes`: an int gives that instance's value (None if it pushed
        none), a list of them the list of those instances' values, for each task named."""
        from spinner.runner.client import current

        if map_indexes is not None and not isinstance(map_indexes, int):
            map_indexes = [int(i) for i in map_indexes]
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
            key=client.key, token=client.token, dag_id=dag_id or "", task_ids=list(dict.fromkeys(ids)),
            xcom_key=key, include_prior_dates=include_prior_dates,
        )  # fmt: skip
        try:
            response = client.call(client.stub.PullXCom, request, f"pulling XCom '{key}'")
        except grpc.RpcError as e:
            raise XComError(f"{self._where()}: pulling XCom '{key}' of {ids} failed: {_details(e)}") from None
        items: dict[str, list[PullItem]] = {}
        for item in response.items:
            items.setdefault(item.task_id, []).append(item)
        values = [pulled_value(items.get(t, []), self._is_mapped(t, dag_id), map_indexes) for t in ids]
        return values[0] if single else values

    def __repr__(self) -> str:
        instance = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"<TaskInstance {self.dag_id}.{self.task_id}{instance} {self.run_id} try {self.try_number}>"


def pulled_value(items: Sequence[PullItem], mapped: bool | None, map_indexes: int | list[int] | None) -> Any:
    """What xcom_pull gives for one task from the executor's items for it (one per instance that pushed).

    `mapped`: what the runner's DAG says of the task; None when it cannot say, then the items decide
    (instances 0, 1, ... pushed: a mapped task)."""
    found = {int(i.map_index): json.loads(i.value_json) for i in items if i.found}
    if isinstance(map_indexes, int):
        return found.get(map_indexes)
    if map_indexes is not None:
        return [found.get(i) for i in map_indexes]
    if mapped is None:
        mapped = any(i >= 0 for i in found)
    if mapped:
        return [found[i] for i in sorted(found) if i >= 0]
    return found.get(NO_MAP_INDEX)


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

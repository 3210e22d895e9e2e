"""The runner's side of templates: the previous successful run from the executor's Start answer, and
rendering a task's fields with its DAG's environment, then reporting them (SetRenderedFields) before execute."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from spinner.runner.client import current, say
from spinner.runner.masking import redact
from spinner.sdk.context import PreviousSuccess
from spinner.sdk.rendering import dag_environment, rendered_fields
from spinner.v1 import executor_pb2

if TYPE_CHECKING:
    from spinner.sdk.operators.base import BaseOperator


def previous_success(start: executor_pb2.RunnerStartResponse) -> PreviousSuccess:
    def when(value: str) -> dt.datetime | None:
        return dt.datetime.fromisoformat(value) if value else None

    return PreviousSuccess(
        logical_date=when(start.prev_logical_date_success),
        data_interval_start=when(start.prev_data_interval_start_success),
        data_interval_end=when(start.prev_data_interval_end_success),
        start_date=when(start.prev_start_date_success),
        end_date=when(start.prev_end_date_success),
    )


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


def render_and_report(task: BaseOperator, context: dict[str, Any], snapshot: Path) -> None:
    """Renders the task's templated fields (template files only from inside the snapshot) and stores
    them for the UI. Failing to store them is logged, never fails the task."""
    task.render_template_fields(context, dag_environment(task.dag, snapshot))
    client = current("rendered fields")
    # Secrets a task read (connection passwords, secret-looking variables) are masked here as in its log.
    fields = json.dumps(_masked(rendered_fields(task)), default=str)
    request = executor_pb2.RunnerSetRenderedFieldsRequest(key=client.key, token=client.token, fields_json=fields)
    try:
        client.call(client.stub.SetRenderedFields, request, "storing the rendered fields")
    except grpc.RpcError as e:
        detail = e.details() if hasattr(e, "details") else str(e)
        say(f"could not store the rendered fields: {detail}")

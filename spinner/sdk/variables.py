"""`Variable.get`: a value an admin set (`spinner variables set`), read by a running task.

Where a value comes from, first found wins (as Airflow's AIRFLOW_VAR_ / secrets backends):
1. the environment variable SPINNER_VAR_<KEY> (the key upper-cased), e.g. from executor_config env;
2. the executor's runner API, with this try's token (the executor decrypts it; the task never
   sees the database or the key).

At DAG parse time only the environment is read: without SPINNER_VAR_<KEY> the call is refused with
a message saying why (a DAG's shape must not depend on a value that changes behind its back, and
the parser has no access to the platform). A default does not change that: the DAG file would get
one value when parsed and another when its task runs.
"""

from __future__ import annotations

import json
import os
from typing import Any

import grpc

from spinner.runner import masking
from spinner.runner.client import NotInTask, current
from spinner.sdk import parse_state

ENV_PREFIX = "SPINNER_VAR_"


class _NotSet:
    def __repr__(self) -> str:
        return "NOTSET"


NOTSET: Any = _NotSet()


class SecretsUnavailable(RuntimeError):
    """The executor could not give a variable or connection (the message says why)."""


def rpc_detail(e: grpc.RpcError) -> str:
    details = e.details() if hasattr(e, "details") else None
    code = e.code() if hasattr(e, "code") else None
    return str(details or code or e)


class Variable:
    """Airflow's `Variable.get(key, default_var=..., deserialize_json=...)`."""

    @staticmethod
    def get(key: str, default_var: Any = NOTSET, deserialize_json: bool = False, *, default: Any = NOTSET) -> Any:
        if default is not NOTSET:  # Airflow 3 spells it `default`
            default_var = default
        if not isinstance(key, str) or not key:
            raise ValueError("Variable.get needs a key: a non-empty string")
        raw = lookup(key)
        if raw is None:
            if default_var is not NOTSET:
                return default_var
            raise KeyError(f"Variable {key} does not exist")
        if not deserialize_json:
            return raw
        try:
            value = json.loads(raw)
        except ValueError as e:
            raise ValueError(f"Variable {key} is not valid JSON (deserialize_json=True): {e}") from None
        if masking.is_sensitive(key):
            masking.mask_secret(value)
        return value


def lookup(key: str) -> str | None:
    """The variable's text (None: not set): the environment first, then the executor."""
    env = os.environ.get(ENV_PREFIX + key.upper())
    if env is not None:
        if masking.is_sensitive(key):
            masking.mask_secret(env)
        return env
    if parse_state.parsing():
        raise NotInTask(
            f"Variable.get('{key}') at DAG parse time: variables are read while a task runs "
            f"(in execute, a python_callable or a template such as {{{{ var.value.{key} }}}}), "
            f"not when the DAG file is parsed (only {ENV_PREFIX}{key.upper()} in the environment is read here)"
        )
    from spinner.v1 import executor_pb2

    client = current(f"Variable.get('{key}')")
    request = executor_pb2.RunnerGetVariableRequest(key=client.key, token=client.token, variable_key=key)
    try:
        response: executor_pb2.RunnerGetVariableResponse = client.call(
            client.stub.GetVariable, request, f"reading variable {key}"
        )
    except grpc.RpcError as e:
        raise SecretsUnavailable(f"cannot read variable '{key}': {rpc_detail(e)}") from None
    if not response.found:
        return None
    if masking.is_sensitive(key):
        masking.mask_secret(response.value)
        try:
            masking.mask_secret(json.loads(response.value))
        except ValueError:
            pass
    return str(response.value)

"""The task runner's only way to the platform: the executor's RunnerService, with the try's token.

Task code reaches it through `current()` (XCom, variables, connections, sensors that read
another DAG's state); it never sees the database or the platform's secrets, only this try's token.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from spinner.channels import CHANNEL_OPTIONS
from spinner.v1 import common_pb2, executor_pb2_grpc

T = TypeVar("T")

# Transient: the executor is restarting (a new one adopts this try and takes its calls), or the
# database behind it is (the executor answers UNAVAILABLE, spinner/grpcserver.py). A stopping
# executor's server cancels the calls in flight (CANCELLED). Start and Finish are idempotent per try
# and the others are reads or keyed writes; TriggerDagRun without a logical date is not (a retry
# after a lost answer can start a second run).
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED})
# How long a report is retried: longer than a database restart (the executor sets it from its
# `database_retry_timeout`; spinner/db/errors.py).
RETRY_TIMEOUT_ENV = "SPINNER_DATABASE_RETRY_TIMEOUT"
DEFAULT_RETRY_TIMEOUT = 300.0


def say(message: str) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    print(f"[{stamp}] {message}", flush=True)


def retry_timeout() -> float:
    try:
        value = float(os.environ.get(RETRY_TIMEOUT_ENV, DEFAULT_RETRY_TIMEOUT))
    except ValueError:
        return DEFAULT_RETRY_TIMEOUT
    return value if value > 0 else DEFAULT_RETRY_TIMEOUT


def with_retries(call: Callable[[], T], what: str, timeout: float | None = None) -> T:
    """Retries transient gRPC failures with backoff (0.2 s doubling to 5 s) for `timeout` seconds
    (default: `retry_timeout()`), then raises the last one. A refusal is raised at once."""
    deadline = time.monotonic() + (retry_timeout() if timeout is None else timeout)
    delay = 0.2
    while True:
        try:
            return call()
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else None
            if code not in RETRYABLE or time.monotonic() + delay > deadline:
                raise
            detail = e.details() if hasattr(e, "details") else ""
            say(f"{what}: {detail or 'the executor is unavailable'} ({code}); retrying in {delay:.1f}s")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


class RunnerClient:
    """One try's connection to the executor: its key, its token and the RunnerService stub."""

    def __init__(self, address: str, key: common_pb2.TaskTryKey, token: str) -> None:
        self.address = address
        self.key = key
        self.token = token
        self.channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)  # reconnects within 2 s
        self.stub = executor_pb2_grpc.RunnerServiceStub(self.channel)

    def call(self, method: Callable[..., T], request: object, what: str, timeout: float = 30) -> T:
        """`method` is a stub method (e.g. `client.stub.Finish`); transient failures are retried."""
        return with_retries(lambda: method(request, timeout=timeout), what)

    def close(self) -> None:
        self.channel.close()


_current: RunnerClient | None = None


def install(client: RunnerClient | None) -> None:
    """Makes `client` the one task code in this process talks through (None: outside a task)."""
    global _current
    _current = client


class NotInTask(RuntimeError):
    """Task-time API used outside a running task (at DAG parse time, or in a plain script)."""


def current(what: str) -> RunnerClient:
    if _current is None:
        raise NotInTask(f"{what} is only available while a task runs, not when the DAG file is parsed")
    return _current

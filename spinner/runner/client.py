"""The task runner's only way to the platform: the executor's RunnerService, with the try's token.

Task code reaches it through `current()` (XCom, variables, connections, sensors that read
another DAG's state); it never sees the database or the platform's secrets, only this try's token.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from spinner.v1 import common_pb2, executor_pb2_grpc

T = TypeVar("T")

# Transient: the executor is restarting (a new one adopts this try and takes its calls).
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def say(message: str) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    print(f"[{stamp}] {message}", flush=True)


def with_retries(call: Callable[[], T], what: str, attempts: int = 12) -> T:
    """Retries transient gRPC failures with backoff, for about 35 s."""
    delay = 0.2
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else None
            if code not in RETRYABLE or attempt == attempts:
                raise
            say(f"{what}: executor unavailable ({code}); retrying in {delay:.1f}s")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")


class RunnerClient:
    """One try's connection to the executor: its key, its token and the RunnerService stub."""

    def __init__(self, address: str, key: common_pb2.TaskTryKey, token: str) -> None:
        self.address = address
        self.key = key
        self.token = token
        self.channel = grpc.insecure_channel(address)
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

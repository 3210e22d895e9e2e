"""Whether a DAG file is being imported right now (by a scheduler's parser, or by the runner loading its task).

Task-time APIs (Variable.get, BaseHook.get_connection) refuse to work while it is, with a message
that says why, even in the runner where the executor could answer: a DAG file must import the
same way in the parser and in the runner.

The scheduler's parser also says which pod policy a task's pod_override is checked against while the file
is imported (`checking_pod_overrides`); the runner and callbacks load a file without one, as launch has
checked the override with the executor's own policy by then.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spinner.podpolicy import PodPolicy

_state = threading.local()


@contextmanager
def dag_parsing() -> Iterator[None]:
    depth = getattr(_state, "depth", 0)
    _state.depth = depth + 1
    try:
        yield
    finally:
        _state.depth = depth


def parsing() -> bool:
    return bool(getattr(_state, "depth", 0))


@contextmanager
def checking_pod_overrides(policy: PodPolicy) -> Iterator[None]:
    previous = getattr(_state, "pod_policy", None)
    _state.pod_policy = policy
    try:
        yield
    finally:
        _state.pod_policy = previous


def pod_policy() -> PodPolicy | None:
    """The policy pod_override is checked against while a DAG file is parsed; None: not checked here."""
    return getattr(_state, "pod_policy", None)

"""Whether a DAG file is being imported right now (by a scheduler's parser, or by the runner loading its task).

Task-time APIs (Variable.get, BaseHook.get_connection) refuse to work while it is, with a message
that says why, even in the runner where the executor could answer: a DAG file must import the
same way in the parser and in the runner.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

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

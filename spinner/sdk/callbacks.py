"""Callbacks of tasks and DAGs, and DAG deadlines: what authors declare, checked at definition time.

A callback is a callable taking the context (a BaseNotifier is one), or a list of them. Task
callbacks run in the task's runner after the try's end is recorded; DAG callbacks and deadline
notifiers run in a short-lived callback process the executor launches (spinner/runner/callback.py).
A callback that raises is logged where it ran and changes nothing else.
"""

from __future__ import annotations

import datetime as dt
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from spinner.sdk.exceptions import DagDefinitionError

Callback = Callable[[dict[str, Any]], Any]
Callbacks = tuple[Callback, ...]

TASK_CALLBACKS = (
    "on_execute_callback",
    "on_success_callback",
    "on_failure_callback",
    "on_retry_callback",
    "on_skipped_callback",
)
DAG_CALLBACKS = ("on_success_callback", "on_failure_callback")

# The task callback each end state calls.
CALLBACK_OF_STATE = {
    "success": "on_success_callback",
    "failed": "on_failure_callback",
    "up_for_retry": "on_retry_callback",
    "skipped": "on_skipped_callback",
}

Reference = Literal["logical_date", "queued_at"]
REFERENCES: tuple[str, ...] = ("logical_date", "queued_at")


def as_callbacks(value: Any, where: str, name: str) -> Callbacks:
    """None, a callable or a list of callables, as a tuple; anything else is a DagDefinitionError."""
    if value is None:
        return ()
    items = list(value) if isinstance(value, list | tuple) else [value]
    for item in items:
        if not callable(item):
            raise DagDefinitionError(f"{where}: {name} must be a callable or a list of callables, not {item!r}")
    return tuple(items)


def as_emails(value: Any, where: str) -> tuple[str, ...]:
    """`email`: an address, a comma- or semicolon-separated string of them, or a list."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        items = [p.strip() for p in value.replace(";", ",").split(",")]
    elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise DagDefinitionError(f"{where}: email must be an address or a list of addresses, not {value!r}")
    bad = [a for a in items if a and ("@" not in a or any(c.isspace() for c in a))]
    if bad:
        raise DagDefinitionError(f"{where}: email address(es) {bad} are not valid")
    return tuple(a for a in items if a)


@dataclass(frozen=True)
class Deadline:
    """A DAG run should have ended `after` this long from its reference time, else `notifier` is called once.

    reference: "logical_date" (the end of the run's data interval, when its data is complete) or
    "queued_at" (when the run was created: triggered, or made by the schedule).
    """

    after: dt.timedelta
    reference: Reference = "logical_date"
    notifier: Callback | Sequence[Callback] | None = None

    def check(self, where: str) -> Deadline:
        if not isinstance(self.after, dt.timedelta) or self.after <= dt.timedelta(0):
            raise DagDefinitionError(f"{where}: Deadline after must be a positive timedelta, not {self.after!r}")
        if self.reference not in REFERENCES:
            raise DagDefinitionError(
                f"{where}: Deadline reference must be one of {', '.join(REFERENCES)}, not {self.reference!r}"
            )
        as_callbacks(self.notifier, where, "Deadline notifier")
        return self

    @property
    def notifiers(self) -> Callbacks:
        return as_callbacks(self.notifier, "Deadline", "notifier")

    def due(self, *, data_interval_end: dt.datetime | None, queued_at: dt.datetime | None) -> dt.datetime | None:
        """When a run with these times misses this deadline (None: it has no such reference time)."""
        ref = data_interval_end if self.reference == "logical_date" else queued_at
        return ref + self.after if ref is not None else None


def callback_info(dag: Any) -> dict[str, Any]:
    """What the scheduler must know of a DAG's callbacks (it never runs them): stored in the serialized DAG."""
    info: dict[str, Any] = {}
    for name in DAG_CALLBACKS:
        if getattr(dag, name, ()):
            info[name] = True
    deadline = getattr(dag, "deadline", None)
    if isinstance(deadline, Deadline):
        info["deadline"] = {"after": deadline.after.total_seconds(), "reference": deadline.reference}
    return info


def run_callbacks(callbacks: Sequence[Callback], context: dict[str, Any], say: Callable[[str], None], what: str) -> int:
    """Calls each callback with the context; one that raises is logged with its traceback and the rest
    still run. Returns how many failed."""
    failed = 0
    for callback in callbacks:
        name = getattr(callback, "__qualname__", None) or type(callback).__name__
        say(f"{what}: calling {name}")
        try:
            callback(context)
        except Exception as e:
            failed += 1
            say(f"{what}: {name} failed: {type(e).__name__}: {e}")
            print(traceback.format_exc(), end="", flush=True)
    return failed

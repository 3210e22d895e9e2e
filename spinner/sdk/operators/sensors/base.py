"""BaseSensorOperator: wait for a condition by poking it, in the runner (poke) or between processes (reschedule).

- `mode="poke"`: the try's process pokes, sleeps `poke_interval`, pokes again; it holds its pool and
  partition slots the whole time. Best for short waits.
- `mode="reschedule"`: the process pokes once; when the condition is not met yet it ends, reporting
  the time of its next poke, and the try waits as `up_for_reschedule` with no process and no slot.
  The scheduler queues the same try (same try_number, no retry used) when that time comes
  (docs/adr/0006-sensor-reschedule.md).

`timeout` counts from the try's first poke, across reschedules. When it passes, the try fails
without retrying, saying so (or is skipped with `soft_fail=True`). `exponential_backoff` doubles
the wait after each poke, up to `max_wait`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spinner.sdk.exceptions import DagDefinitionError, FailNoRetry, RescheduleTask, SkipTask
from spinner.sdk.operators.base import BaseOperator
from spinner.sdk.operators.sensors._log import say

MODES = ("poke", "reschedule")
DEFAULT_TIMEOUT = dt.timedelta(days=7)


@dataclass(frozen=True)
class SensorTry:
    """What a sensor knows of its try across reschedules (the runner puts it in the context)."""

    reschedules: int = 0  # how many times this try was rescheduled before this process
    first_poke_at: dt.datetime | None = None  # None: this process makes the try's first poke


def sensor_try(reschedules: int, first_poke_at: str) -> SensorTry:
    when = dt.datetime.fromisoformat(first_poke_at) if first_poke_at else None
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return SensorTry(max(reschedules, 0), when)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _seconds(value: Any, where: str, name: str, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise DagDefinitionError(f"{where}: {name} must be a timedelta or seconds, not {value!r}")
    if seconds < 0:
        raise DagDefinitionError(f"{where}: {name} must not be negative, got {value!r}")
    return seconds


class BaseSensorOperator(BaseOperator):
    """Waits until `poke(context)` returns True. Subclasses implement `poke`."""

    def __init__(
        self,
        task_id: str,
        poke_interval: dt.timedelta | float = 60.0,
        timeout: dt.timedelta | float = DEFAULT_TIMEOUT,
        soft_fail: bool = False,
        mode: str = "poke",
        exponential_backoff: bool = False,
        max_wait: dt.timedelta | float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id, **kwargs)
        where = f"DAG '{self.dag.dag_id if self.dag else '?'}', task '{task_id}'"
        if mode not in MODES:
            raise DagDefinitionError(f"{where}: mode must be 'poke' or 'reschedule', not {mode!r}")
        self.mode = mode
        self.poke_interval = float(_seconds(poke_interval, where, "poke_interval") or 0.0)
        self.timeout = float(_seconds(timeout, where, "timeout") or 0.0)
        if self.timeout <= 0:
            raise DagDefinitionError(f"{where}: timeout must be more than zero")
        self.max_wait = _seconds(max_wait, where, "max_wait", allow_none=True)
        if self.max_wait is not None and self.max_wait < self.poke_interval:
            raise DagDefinitionError(f"{where}: max_wait ({self.max_wait:g} s) is below poke_interval")
        self.soft_fail = bool(soft_fail)
        self.exponential_backoff = bool(exponential_backoff)
        # The I/O edges of the loop; tests give a fake clock and sleep.
        self.clock: Callable[[], dt.datetime] = _utcnow
        self.sleep: Callable[[float], None] = time.sleep

    # --- what subclasses implement ---------------------------------------------------

    def poke(self, context: dict[str, Any]) -> bool:
        raise NotImplementedError(f"{type(self).__name__} must implement poke()")

    def next_poke_hint(self, context: dict[str, Any], now: dt.datetime) -> dt.datetime | None:
        """When the condition can first be true, if the sensor knows (a time sensor does): no poke before."""
        return None

    def timed_wait(self) -> dict[str, Any] | None:
        """For a sensor the scheduler can decide alone (a time sensor in reschedule mode): its target,
        as {"after_interval_end": seconds} or {"at": iso}, with timeout and soft_fail; else None."""
        return None

    def _timed(self, target: dict[str, Any]) -> dict[str, Any] | None:
        if self.mode != "reschedule":
            return None
        return target | {"timeout": self.timeout, "soft_fail": self.soft_fail}

    # --- the loop --------------------------------------------------------------------

    def interval_after(self, pokes: int) -> float:
        """Seconds to wait after the `pokes`-th poke of the try (1 for the first)."""
        wait = self.poke_interval
        if self.exponential_backoff:
            wait = self.poke_interval * (2 ** max(pokes - 1, 0))
        if self.max_wait is not None:
            wait = min(wait, self.max_wait)
        return wait

    def execute(self, context: dict[str, Any]) -> Any:
        state = context.get("sensor_try") or SensorTry()
        started = state.first_poke_at or self.clock()
        pokes = state.reschedules
        deadline = started + dt.timedelta(seconds=self.timeout)
        while True:
            pokes += 1
            if self.poke(context):
                say(f"{type(self).__name__} {self.task_id}: condition met after {pokes} poke(s)")
                return None
            now = self.clock()
            if now >= deadline:
                self._time_out(now - started)
            when = now + dt.timedelta(seconds=self.interval_after(pokes))
            hint = self.next_poke_hint(context, now)
            if hint is not None and hint > when:
                when = hint
            when = min(when, deadline)  # the last poke happens at the deadline, not after it
            if self.mode == "reschedule":
                raise RescheduleTask(when)
            say(f"{type(self).__name__} {self.task_id}: not yet (poke {pokes}); next poke at {when.isoformat()}")
            self.sleep(max((when - now).total_seconds(), 0.0))

    def _time_out(self, waited: dt.timedelta) -> None:
        message = (
            f"Sensor {self.task_id} timed out: its condition was not met within its timeout of "
            f"{self.timeout:g} s (waited {waited.total_seconds():.0f} s since the first poke)"
        )
        if self.soft_fail:
            raise SkipTask(message + "; skipped (soft_fail)")
        raise FailNoRetry(message)

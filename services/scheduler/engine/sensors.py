"""Sensors as the scheduler sees them (docs/adr/0006-sensor-reschedule.md).

A sensor in reschedule mode ends its process between pokes; the executor leaves the try
`up_for_reschedule` with `reschedule_at`, holding no pool or partition slot. The scheduler moves it
back to `scheduled` when that time comes, and queues it as the same try (try_number unchanged).

Time sensors in reschedule mode (TimeDeltaSensor, DateTimeSensor with a literal target) need no
process at all: the scheduler knows the run's data interval, so it decides them here. It parks
the task instance `up_for_reschedule` until its target (or its timeout, counted from when it began
waiting), then ends it: success at the target, failed (or skipped with soft_fail) at the timeout.
No try is started, so try_number stays 0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from services.scheduler.engine.ti_state import TiRow
from spinner.db.models import DagRun
from spinner.sdk.serialization import SerializedTask


def sensor_poke_due(ti: TiRow, now: dt.datetime) -> bool:
    """Whether an up_for_reschedule try's next poke may be queued now."""
    return ti.reschedule_at is None or now >= ti.reschedule_at


@dataclass(frozen=True)
class TimedStep:
    """What the scheduler does to a time sensor this pass: its new state and the columns that change."""

    state: str
    ended: bool
    values: dict[str, Any] = field(default_factory=dict)


def target_of(wait: dict[str, Any], run: DagRun) -> dt.datetime:
    if "at" in wait:
        when = dt.datetime.fromisoformat(str(wait["at"]))
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    end = run.data_interval_end or run.logical_date
    return end + dt.timedelta(seconds=float(wait["after_interval_end"]))


def timed_step(task: SerializedTask, run: DagRun, ti: TiRow, before: str | None, now: dt.datetime) -> TimedStep | None:
    """For a scheduled (or waiting) scheduler-decided sensor: start waiting, keep waiting, or end it.
    None for any other task."""
    wait = task.timed_wait
    if wait is None:
        return None
    target = target_of(wait, run)
    if before == "up_for_reschedule":
        if ti.reschedule_at is not None and now < ti.reschedule_at:
            return TimedStep("up_for_reschedule", False)
        if now >= target:
            return TimedStep("success", True, {"reschedule_at": None})
        timeout = float(wait.get("timeout") or 0)
        message = (
            f"Sensor {task.task_id} timed out: its condition was not met within its timeout of {timeout:g} s "
            f"(decided by the scheduler; the target was {target.isoformat()})"
        )
        if wait.get("soft_fail"):
            return TimedStep("skipped", True, {"reschedule_at": None, "error": message + "; skipped (soft_fail)"})
        return TimedStep("failed", True, {"reschedule_at": None, "error": message})
    if now >= target:
        return TimedStep("success", True, {"first_poke_at": now})
    deadline = now + dt.timedelta(seconds=float(wait.get("timeout") or 0))
    return TimedStep("up_for_reschedule", False, {"reschedule_at": min(target, deadline), "first_poke_at": now})

"""Errors of the authoring SDK, and the exceptions task code raises to steer its outcome."""

from __future__ import annotations

import datetime as dt


class DagDefinitionError(ValueError):
    """A DAG or task is defined wrongly. The message always names the DAG (and the task)."""


class SkipTask(Exception):
    """Raised by task code: end this try as skipped."""


class FailNoRetry(Exception):
    """Raised by task code: fail this try and do not retry it."""


class RescheduleTask(Exception):
    """Raised by a sensor in reschedule mode: end this process now and poke again at `reschedule_at`.

    The try keeps its try_number and frees its slots until then (docs/adr/0006-sensor-reschedule.md)."""

    def __init__(self, reschedule_at: dt.datetime) -> None:
        super().__init__(f"reschedule at {reschedule_at.isoformat()}")
        self.reschedule_at = reschedule_at

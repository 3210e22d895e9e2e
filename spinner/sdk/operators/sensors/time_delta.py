"""TimeDeltaSensor: waits until a time after the end of the run's data interval."""

from __future__ import annotations

import datetime as dt
from typing import Any

from spinner.sdk.exceptions import DagDefinitionError
from spinner.sdk.operators.sensors.base import BaseSensorOperator


class TimeDeltaSensor(BaseSensorOperator):
    """Succeeds once `data_interval_end + delta` has passed (e.g. wait an hour after the day ends).

    In reschedule mode the scheduler decides it without starting a process (docs/adr/0006-sensor-reschedule.md)."""

    def __init__(self, task_id: str, delta: dt.timedelta, **kwargs: Any) -> None:
        super().__init__(task_id, **kwargs)
        if not isinstance(delta, dt.timedelta):
            name = self.dag.dag_id if self.dag else "?"
            raise DagDefinitionError(f"DAG '{name}', task '{task_id}': delta must be a timedelta, not {delta!r}")
        self.delta = delta

    def target(self, context: dict[str, Any]) -> dt.datetime:
        end: dt.datetime = context.get("data_interval_end") or context["logical_date"]
        return end + self.delta

    def poke(self, context: dict[str, Any]) -> bool:
        return self.clock() >= self.target(context)

    def timed_wait(self) -> dict[str, Any] | None:
        return self._timed({"after_interval_end": self.delta.total_seconds()})

    def next_poke_hint(self, context: dict[str, Any], now: dt.datetime) -> dt.datetime | None:
        return self.target(context)

"""DateTimeSensor: waits until a given time (a datetime, or a templated ISO 8601 string)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from spinner.sdk.exceptions import DagDefinitionError
from spinner.sdk.operators.sensors.base import BaseSensorOperator


def _as_time(value: dt.datetime | str, task_id: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        when = value
    else:
        try:
            when = dt.datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"DateTimeSensor {task_id}: target_time {value!r} is not an ISO 8601 time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


class DateTimeSensor(BaseSensorOperator):
    """Succeeds once `target_time` has passed. A string is a template, rendered per run
    (e.g. "{{ data_interval_end }}"); naive times are UTC. A literal datetime in reschedule mode is
    decided by the scheduler without starting a process (docs/adr/0006-sensor-reschedule.md)."""

    template_fields = ("target_time",)

    def __init__(self, task_id: str, target_time: dt.datetime | str, **kwargs: Any) -> None:
        super().__init__(task_id, **kwargs)
        if not isinstance(target_time, dt.datetime | str):
            name = self.dag.dag_id if self.dag else "?"
            raise DagDefinitionError(
                f"DAG '{name}', task '{task_id}': target_time must be a datetime or a string, not {target_time!r}"
            )
        self.target_time: dt.datetime | str = (
            _as_time(target_time, task_id) if isinstance(target_time, dt.datetime) else target_time
        )

    def target(self) -> dt.datetime:
        return _as_time(self.target_time, self.task_id)

    def poke(self, context: dict[str, Any]) -> bool:
        return self.clock() >= self.target()

    def timed_wait(self) -> dict[str, Any] | None:
        if not isinstance(self.target_time, dt.datetime):
            return None  # a template: only the runner can render it
        return self._timed({"at": self.target_time.isoformat()})

    def next_poke_hint(self, context: dict[str, Any], now: dt.datetime) -> dt.datetime | None:
        return self.target()

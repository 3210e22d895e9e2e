"""Sensors as the scheduler sees them: when a rescheduled sensor's next poke is due (docs/adr/0004).

A sensor in reschedule mode ends its process between pokes; the executor leaves the try
`up_for_reschedule` with `reschedule_at`, holding no pool or partition slot. The scheduler moves it
back to `scheduled` when that time comes, and queues it as the same try (try_number unchanged).
"""

from __future__ import annotations

import datetime as dt

from services.scheduler.engine.ti_state import TiRow


def sensor_poke_due(ti: TiRow, now: dt.datetime) -> bool:
    """Whether an up_for_reschedule try's next poke may be queued now."""
    return ti.reschedule_at is None or now >= ti.reschedule_at

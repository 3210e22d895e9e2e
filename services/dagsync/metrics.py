"""dagsync's OpenTelemetry instruments."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation


@dataclass
class DagSyncMetrics:
    meter: metrics.Meter
    source: str
    staleness: Callable[[], float | None] = lambda: None
    attributes: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.attributes = {"source": self.source}
        self.refused = self.meter.create_counter(
            "spinner.dagsync.refused",
            description="Bundles refused as bad input (attribute reason), the last good snapshot kept",
        )
        self.errors = self.meter.create_counter(
            "spinner.dagsync.errors", description="Syncs that failed because the source could not be read"
        )
        self.downloaded = self.meter.create_counter(
            "spinner.dagsync.files.downloaded", description="Files read from the source (unchanged ones are reused)"
        )
        self.poll_duration = self.meter.create_histogram(
            "spinner.dagsync.poll.duration", unit="s", description="One poll of the source, switch included"
        )
        self.switches = self.meter.create_counter("spinner.dagsync.switches", description="New versions made current")
        self.meter.create_observable_gauge(
            "spinner.dagsync.staleness",
            callbacks=[self._observe_staleness],
            unit="s",
            description="Seconds since the snapshot was last confirmed to be the source's newest version",
        )

    def _observe_staleness(self, options: CallbackOptions) -> Iterable[Observation]:
        value = self.staleness()
        return [] if value is None else [Observation(value, self.attributes)]

    def refusal(self, reason: str) -> None:
        self.refused.add(1, {**self.attributes, "reason": reason})

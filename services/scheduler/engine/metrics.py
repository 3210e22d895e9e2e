"""The scheduler's OpenTelemetry instruments, per partition and tier."""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry import metrics


@dataclass
class SchedulerMetrics:
    meter: metrics.Meter
    partition: str
    tier: int
    attributes: dict[str, str | int] = field(init=False)

    def __post_init__(self) -> None:
        self.attributes = {"partition": self.partition, "tier": self.tier}
        self.first_task_delay = self.meter.create_histogram(
            "spinner.scheduler.delay.first_task",
            unit="s",
            description="A run's first tasks: from when the run was due (interval end or trigger) to queued",
        )
        self.downstream_delay = self.meter.create_histogram(
            "spinner.scheduler.delay.downstream",
            unit="s",
            description="A downstream task: from its last upstream task's end to queued",
        )
        self.loop_duration = self.meter.create_histogram(
            "spinner.scheduler.loop.duration", unit="s", description="One scheduling pass"
        )
        self.queued = self.meter.create_counter(
            "spinner.scheduler.task_instances.queued", description="Task tries handed to the executor"
        )
        self.passes = self.meter.create_counter(
            "spinner.scheduler.passes",
            description="Scheduling passes by kind: full (every active run looked at), incremental (the runs where"
            " something changed), idle (no active run)",
        )
        self._by_kind = {kind: {**self.attributes, "kind": kind} for kind in ("full", "incremental", "idle")}
        self.loop_errors = self.meter.create_counter(
            "spinner.scheduler.loop.errors", description="Scheduling passes that failed and were retried"
        )

    def count_pass(self, kind: str) -> None:
        self.passes.add(1, self._by_kind[kind])

    def first_task(self, seconds: float) -> None:
        self.first_task_delay.record(max(seconds, 0.0), self.attributes)

    def downstream(self, seconds: float) -> None:
        self.downstream_delay.record(max(seconds, 0.0), self.attributes)

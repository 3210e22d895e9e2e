"""OpenTelemetry tracing and metrics for every service, started once at boot.

One trace follows a trigger: the gateway's request span is carried to the scheduler
in gRPC metadata, stored on the DAG run (`trace_context`), picked up by the scheduler
loop when it queues the run's tasks, and carried on to the executor in gRPC metadata.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from spinner.config import CommonSettings


@dataclass
class Telemetry:
    """The providers a service owns; shut them down on exit to flush."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    _extra: list[Any] = field(default_factory=list)

    def tracer(self, name: str) -> trace.Tracer:
        return self.tracer_provider.get_tracer(name)

    def meter(self, name: str) -> metrics.Meter:
        return self.meter_provider.get_meter(name)

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def setup_telemetry(
    service_name: str,
    settings: CommonSettings,
    *,
    span_processors: list[SpanProcessor] | None = None,
    metric_readers: list[MetricReader] | None = None,
) -> Telemetry:
    """Builds providers from settings (exporter none, console or otlp), plus any given for tests.

    Providers are returned, not installed globally, so several services in one process
    (tests, standalone) each keep their own resource name.
    """
    resource = Resource.create({"service.name": f"spinner-{service_name}", "spinner.cluster": settings.cluster})
    # With nothing to export spans to, none is recorded (ids are still made and passed on, so a
    # trace id stays the same through the services): recording a span per task try for nobody was
    # a sixth of the executor's CPU in a burst.
    exporting = settings.telemetry_exporter != "none" or bool(span_processors)
    tracer_provider = TracerProvider(resource=resource, sampler=None if exporting else ALWAYS_OFF)
    readers: list[MetricReader] = list(metric_readers or [])
    if settings.telemetry_exporter == "console":
        tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(), export_interval_millis=60_000))
    elif settings.telemetry_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        endpoint = settings.otlp_endpoint or None
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=endpoint)))
    for processor in span_processors or []:
        tracer_provider.add_span_processor(processor)
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    return Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)


def inject_metadata() -> tuple[tuple[str, str], ...]:
    """The current trace context as gRPC metadata."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return tuple(carrier.items())


def extract_metadata(metadata: Any) -> otel_context.Context:
    """A context from incoming gRPC metadata (a sequence of key/value pairs or None)."""
    carrier = {str(k): str(v) for k, v in (metadata or ())}
    return propagate.extract(carrier)


def current_traceparent() -> str:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", "")


def context_from_traceparent(traceparent: str) -> otel_context.Context:
    return propagate.extract({"traceparent": traceparent} if traceparent else {})


@contextmanager
def attached(ctx: otel_context.Context) -> Iterator[None]:
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)

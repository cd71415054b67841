"""OpenTelemetry and logging, set up once per process.

The standard variables work: `OTEL_EXPORTER_OTLP_ENDPOINT` (or its older alias
`TESSERA_OTEL_EXPORTER_OTLP_ENDPOINT`) turns on the export of traces and metrics over
OTLP/HTTP (`/v1/traces`, `/v1/metrics`); `OTEL_SERVICE_NAME` overrides the service name
(`tessera-<service>` by default); `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_METRIC_EXPORT_INTERVAL`,
`OTEL_BSP_*` and the sampler variables are read by the SDK itself. The resource carries
`service.version`. HTTP spans and metrics use the stable semantic conventions
(`OTEL_SEMCONV_STABILITY_OPT_IN=http` unless the operator chose otherwise).

With no endpoint, no provider is installed: spans and metric points would cost every
request and then be dropped (docs/performance.md). The W3C trace context still flows.
Logs are JSON lines carrying the service, the trace and span ids, and the request id.
"""

from __future__ import annotations

import logging
import os
import sys

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from pythonjsonlogger.json import JsonFormatter

from tessera.shared.http.context import current_request_id
from tessera.shared.settings import InfraSettings

_clients_instrumented = False
_collecting = False
_metering = False

SEMCONV_OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"


def stable_http_conventions() -> None:
    """HTTP spans and metrics with the stable attribute names (`http.request.method`,
    `http.response.status_code`, `url.path`, `http.route`; `http.server.request.duration`).
    Must run before the first instrumentation reads it; an operator's own choice stays."""
    os.environ.setdefault(SEMCONV_OPT_IN, "http")


def resource_for(service: str, version: str = "", service_name: str = "") -> Resource:
    """The process's resource: `OTEL_SERVICE_NAME` (here `service_name`) wins over the
    default `tessera-<service>`; `OTEL_RESOURCE_ATTRIBUTES` is merged by the SDK."""
    attributes: dict[str, str] = {"service.namespace": "tessera"}
    if version:
        attributes["service.version"] = version
    name = service_name or os.environ.get("OTEL_SERVICE_NAME", "")
    attributes["service.name"] = name or f"tessera-{service}"
    return Resource.create(attributes)


class ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        span = trace.get_current_span().get_span_context()
        record.trace_id = format(span.trace_id, "032x") if span.is_valid else None
        record.span_id = format(span.span_id, "016x") if span.is_valid else None
        record.request_id = current_request_id()
        return True


def configure_logging(service: str, level: str = "INFO", json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter(service))
    if json_lines:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(service)s] %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def configure_tracing(
    service: str,
    endpoint: str = "",
    extra_processors: tuple[SpanProcessor, ...] = (),
    *,
    instrument_clients: bool = False,
    resource: Resource | None = None,
) -> TracerProvider | None:
    """Install the tracer provider once; later calls add their processors to it.

    With nowhere to send spans (no OTLP endpoint, no processor), none is installed: spans
    would cost every request hundreds of microseconds to build and then be dropped. The
    W3C trace context a request or message brings still flows through (the API's no-op
    spans carry it), so a traced caller's trace is not cut."""
    global _collecting
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        _collecting = True  # installed before us (auto-instrumentation, say): spans go there
        for processor in extra_processors:
            current.add_span_processor(processor)
        if instrument_clients:
            instrument_libraries()
        return current
    if not endpoint and not extra_processors:
        return None
    provider = TracerProvider(resource=resource or resource_for(service))
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces"))
        )
    for processor in extra_processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _collecting = True
    if instrument_clients:
        instrument_libraries()
    return provider


def collecting() -> bool:
    """Whether a tracer provider is installed (spans go somewhere)."""
    return _collecting


def instrument_libraries() -> None:
    """A span per SQL statement and Redis command (opt-in: each costs more than the
    statement's own client-side work)."""
    global _clients_instrumented
    if _clients_instrumented:
        return
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    RedisInstrumentor().instrument()
    _clients_instrumented = True


def configure_metrics(resource: Resource, endpoint: str = "") -> MeterProvider | None:
    """Install a meter provider that exports over OTLP/HTTP every
    `OTEL_METRIC_EXPORT_INTERVAL` ms (60 s by default), once per process. None without an
    endpoint: the API's no-op instruments then cost next to nothing."""
    global _metering
    current = metrics.get_meter_provider()
    if isinstance(current, MeterProvider):
        _metering = True  # installed before us (auto-instrumentation, a test): use it
        return current
    if not endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    exporter = OTLPMetricExporter(endpoint=endpoint.rstrip("/") + "/v1/metrics")
    provider = MeterProvider(
        resource=resource, metric_readers=[PeriodicExportingMetricReader(exporter)]
    )
    metrics.set_meter_provider(provider)
    _metering = True
    return provider


def metric_interval_seconds() -> float:
    """How often metrics are exported (`OTEL_METRIC_EXPORT_INTERVAL`, ms; 60 s default):
    gauges sampled by a task need no finer grain."""
    try:
        return max(float(os.environ.get("OTEL_METRIC_EXPORT_INTERVAL", "60000")) / 1000, 0.1)
    except ValueError:
        return 60.0


def metering() -> bool:
    """Whether a meter provider is installed (metric points go somewhere)."""
    return _metering


def configure_telemetry(
    service: str, infra: InfraSettings, version: str = ""
) -> TracerProvider | None:
    configure_logging(service, infra.log_level, infra.log_json)
    stable_http_conventions()
    resource = resource_for(service, version, infra.otel_service_name)
    configure_metrics(resource, infra.otel_exporter_otlp_endpoint)
    return configure_tracing(
        service,
        infra.otel_exporter_otlp_endpoint,
        instrument_clients=infra.otel_client_spans,
        resource=resource,
    )

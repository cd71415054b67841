"""OpenTelemetry and logging, set up once per process.

Traces are always made (so the trace id reaches logs and NATS headers); they are exported
over OTLP/HTTP only when `TESSERA_OTEL_EXPORTER_OTLP_ENDPOINT` is set. Logs are JSON lines
carrying the service, the trace and span ids, and the request id.
"""

from __future__ import annotations

import logging
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from pythonjsonlogger.json import JsonFormatter

from tessera.shared.http.context import current_request_id
from tessera.shared.settings import InfraSettings

_clients_instrumented = False
_collecting = False


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
    provider = TracerProvider(resource=Resource.create({"service.name": f"tessera-{service}"}))
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


def configure_telemetry(service: str, infra: InfraSettings) -> TracerProvider | None:
    configure_logging(service, infra.log_level, infra.log_json)
    return configure_tracing(
        service,
        infra.otel_exporter_otlp_endpoint,
        instrument_clients=infra.otel_client_spans,
    )

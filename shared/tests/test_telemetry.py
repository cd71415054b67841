"""Logs are JSON lines that carry the service, the trace and the request id; URLs in logs
lose their credentials."""

import io
import json
import logging

from opentelemetry.sdk.trace import TracerProvider

from tessera.shared.http.context import reset_request_id, set_request_id
from tessera.shared.service import redacted
from tessera.shared.telemetry import ContextFilter


def test_a_log_line_inside_a_span_carries_its_trace_and_request_ids() -> None:
    from pythonjsonlogger.json import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter("billing"))
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("test.telemetry")
    logger.addHandler(handler)
    logger.propagate = False
    tracer = TracerProvider().get_tracer("test")
    token = set_request_id("req-12345678")
    try:
        with tracer.start_as_current_span("work") as span:
            logger.warning("billing.thing.happened", extra={"order": "o1"})
            trace_id = format(span.get_span_context().trace_id, "032x")
    finally:
        reset_request_id(token)
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["message"] == "billing.thing.happened"
    assert line["service"] == "billing"
    assert line["trace_id"] == trace_id
    assert line["request_id"] == "req-12345678"
    assert line["order"] == "o1"


def test_credentials_are_removed_from_urls_before_logging() -> None:
    assert redacted("nats://tessera:s3cret@nats:4222") == "nats://nats:4222"
    assert redacted("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"

"""The services' own metrics, beside the HTTP instrumentation's `http.server.request.duration`
(request rate, errors and duration per route come from that histogram's count, its
`http.response.status_code` and its buckets).

Instruments come from the global meter provider through the API's proxies, so they can be
made at import and start recording when `telemetry.configure_metrics` installs a provider
(with no OTLP endpoint they stay no-ops). Names and attributes are part of the operations
contract: docs/operations.md lists them.
"""

from __future__ import annotations

from opentelemetry import metrics

meter = metrics.get_meter("tessera")

CONSUMER_LAG = meter.create_gauge(
    "tessera.consumer.lag",
    unit="{message}",
    description="Messages in the stream this durable consumer has not yet acked: "
    "JetStream's num_pending plus num_ack_pending, sampled from the consumer's info every "
    "export interval (so a stalled consumer's lag keeps rising).",
)
CONSUMER_DELIVERIES = meter.create_counter(
    "tessera.consumer.deliveries",
    unit="{message}",
    description="Messages delivered to a consumer's handler, by outcome (acked, retried, "
    "dead_lettered).",
)
CONSUMER_REDELIVERIES = meter.create_counter(
    "tessera.consumer.redeliveries",
    unit="{message}",
    description="Deliveries that were not a message's first (a handler failed before, or "
    "did not answer within ack_wait).",
)
OUTBOX_BACKLOG = meter.create_gauge(
    "tessera.outbox.backlog",
    unit="{event}",
    description="Outbox rows not yet published to JetStream.",
)
OUTBOX_PUBLISHED = meter.create_counter(
    "tessera.outbox.published",
    unit="{event}",
    description="Outbox rows published to JetStream, by outcome (published, failed).",
)
HTTP_SERVER_DURATION = meter.create_histogram(
    "http.server.request.duration",
    unit="s",
    description="Duration of HTTP server requests (the fast paths' share; the "
    "instrumentation records the rest).",
    explicit_bucket_boundaries_advisory=[
        0.005,
        0.01,
        0.025,
        0.05,
        0.075,
        0.1,
        0.25,
        0.5,
        0.75,
        1.0,
        2.5,
        5.0,
        7.5,
        10.0,
    ],
)

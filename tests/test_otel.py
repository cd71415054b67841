"""OpenTelemetry the standard way (issue 14, item 15): billing runs in its own process,
configured only with the standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT`,
`OTEL_SERVICE_NAME`, `OTEL_METRIC_EXPORT_INTERVAL`), and exports to a real OTLP/HTTP
receiver in this process: HTTP spans with the stable semantic conventions, and metrics with
the right names and attributes (request duration per route, webhook outcomes, consumer lag
and deliveries, the outbox's backlog and publishes)."""

from __future__ import annotations

import gzip
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.billing.checkout import stripe_shapes as shapes
from tessera.billing.settings import DEV_WEBHOOK_SECRET
from tessera.devstack.infra import free_port
from tessera.devstack.serving import LoopServer
from tessera.shared.db.pool import asyncpg_dsn
from tessera.shared.settings import InfraSettings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "deploy" / "catalog.json"
SERVICE_NAME = "billing-under-test"


def value_of(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: value_of(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


@dataclass(frozen=True)
class Point:
    resource: dict[str, Any]
    metric: str
    unit: str
    attributes: dict[str, Any]
    value: float


@dataclass
class Receiver:
    """An OpenTelemetry collector's OTLP/HTTP receiver (traces and metrics), keeping what
    it is sent, decoded from the protobuf the exporters send."""

    port: int = field(default_factory=free_port)
    points: list[Point] = field(default_factory=list)
    spans: list[tuple[dict[str, Any], str, dict[str, Any]]] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/metrics", self.metrics, methods=["POST"]),
                Route("/v1/traces", self.traces, methods=["POST"]),
            ]
        )

    @staticmethod
    async def body(request: Request) -> bytes:
        body = await request.body()
        return gzip.decompress(body) if request.headers.get("content-encoding") == "gzip" else body

    async def metrics(self, request: Request) -> Response:
        export = ExportMetricsServiceRequest.FromString(await self.body(request))
        for resource_metrics in export.resource_metrics:
            resource = attributes(resource_metrics.resource.attributes)
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    for point in getattr(metric, kind).data_points:
                        value = (
                            point.count
                            if kind in ("histogram", "exponential_histogram")
                            else (point.as_int if point.HasField("as_int") else point.as_double)
                        )
                        self.points.append(
                            Point(
                                resource,
                                metric.name,
                                metric.unit,
                                attributes(point.attributes),
                                value,
                            )
                        )
        answer = ExportMetricsServiceResponse().SerializeToString()
        return Response(answer, media_type="application/x-protobuf")

    async def traces(self, request: Request) -> Response:
        export = ExportTraceServiceRequest.FromString(await self.body(request))
        for resource_spans in export.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append((resource, span.name, attributes(span.attributes)))
        answer = ExportTraceServiceResponse().SerializeToString()
        return Response(answer, media_type="application/x-protobuf")

    def named(self, metric: str, **wanted: Any) -> list[Point]:
        return [
            p
            for p in self.points
            if p.metric == metric and all(p.attributes.get(k) == v for k, v in wanted.items())
        ]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    server = await LoopServer.start(receiver.app(), receiver.port)
    yield receiver
    await server.stop(timeout=10)


@pytest.fixture
def billing(
    database_url: str,
    infra_settings: InfraSettings,
    receiver: Receiver,
    tmp_path: Path,
    all_streams: None,  # auth's APIKEYS among them: billing is ready once its key book is
) -> Iterator[str]:
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("OTEL_") and key != "TESSERA_OTEL_EXPORTER_OTLP_ENDPOINT"
    }
    env.update(
        {
            "TESSERA_ENV": "test",
            "TESSERA_NATS_URL": str(infra_settings.nats_url),
            "TESSERA_REDIS_URL": str(infra_settings.redis_url),
            "TESSERA_NAMESPACE": infra_settings.namespace,
            "TESSERA_LOG_JSON": "false",
            "TESSERA_BILLING_DATABASE_URL": database_url,
            "TESSERA_BILLING_CATALOG_FILE": str(CATALOG),
            # The standard variables only.
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_SERVICE_NAME": SERVICE_NAME,
            "OTEL_METRIC_EXPORT_INTERVAL": "300",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
    )
    log = open(tmp_path / "billing.log", "wb")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tessera.billing.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (tmp_path / "billing.log").read_text()
            assert time.monotonic() < deadline, "billing did not become ready"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def purchase() -> tuple[bytes, str]:
    session = shapes.checkout_session(
        session_id=shapes.stripe_id("cs"),
        email=f"otel-{secrets.token_hex(4)}@example.com",
        sku="chartgpt-lifetime",
        quantity=1,
        amount_total=14900,
        currency="usd",
        customer=shapes.stripe_id("cus"),
        payment_intent=shapes.stripe_id("pi"),
    )
    return shapes.signed(shapes.event("checkout.session.completed", session), DEV_WEBHOOK_SECRET)


async def test_billing_exports_stable_spans_and_its_metrics_over_otlp(
    billing: str, receiver: Receiver, database_url: str, eventually: Any
) -> None:
    body, signature = purchase()
    json_headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=billing, timeout=10) as client:
        paid = await client.post(
            "/webhooks/stripe",
            content=body,
            headers={**json_headers, "stripe-signature": signature},
        )
        assert paid.status_code == 200, paid.text
        forged = await client.post(
            "/webhooks/stripe",
            content=body,
            headers={**json_headers, "stripe-signature": "t=1,v1=00"},
        )
        assert forged.status_code == 400
        anonymous = await client.get("/v1/me/orders")
        assert anonymous.status_code == 401

    durable = "billing__billing_purchase_completed_v1"  # the consumer, without the namespace

    async def everything_arrived() -> bool:
        return bool(
            receiver.named(
                "http.server.request.duration",
                **{"http.route": "/webhooks/stripe", "http.response.status_code": 200},
            )
            and receiver.named(
                "http.server.request.duration",
                **{"http.route": "/webhooks/stripe", "http.response.status_code": 400},
            )
            and receiver.named(
                "http.server.request.duration",
                **{"http.route": "/v1/me/orders", "http.response.status_code": 401},
            )
            and receiver.named("tessera.webhook.deliveries", outcome="received")
            and receiver.named("tessera.webhook.deliveries", outcome="rejected")
            and receiver.named(
                "tessera.webhook.applied",
                outcome="processed",
                **{"stripe.event.type": "checkout.session.completed"},
            )
            and receiver.named(
                "tessera.consumer.deliveries",
                outcome="acked",
                **{"messaging.consumer.group.name": durable},
            )
            and receiver.named("tessera.consumer.lag", **{"messaging.consumer.group.name": durable})
            and receiver.named("tessera.outbox.published", outcome="published")
            and receiver.named("tessera.outbox.backlog")
            and [s for s in receiver.spans if s[2].get("http.route") == "/v1/me/orders"]
        )

    try:
        await eventually(everything_arrived, timeout=30)
    except AssertionError:
        names = sorted({(p.metric, tuple(sorted(p.attributes.items()))) for p in receiver.points})
        raise AssertionError(f"missing metrics; received {names}") from None

    # The resource: OTEL_SERVICE_NAME, and the service's version.
    for point in receiver.points:
        assert point.resource["service.name"] == SERVICE_NAME
        assert point.resource["service.version"] == "0.1.0"

    # Request rate, errors and duration per route: the histogram's count per status.
    [ok] = receiver.named(
        "http.server.request.duration",
        **{"http.route": "/webhooks/stripe", "http.response.status_code": 200},
    )[-1:]
    assert ok.unit == "s" and ok.value >= 1
    assert ok.attributes["http.request.method"] == "POST"
    [rejected] = receiver.named("tessera.webhook.deliveries", outcome="rejected")[-1:]
    assert rejected.attributes["reason"] == "signature-mismatch"
    assert rejected.value >= 1
    [lag] = receiver.named("tessera.consumer.lag", **{"messaging.consumer.group.name": durable})[
        -1:
    ]
    assert lag.attributes["messaging.destination.name"] == "billing.purchase.completed.v1"
    assert lag.value >= 0

    await a_redelivery_is_counted(billing, receiver, database_url, durable, eventually)

    # HTTP spans with the stable conventions, and none of the old names.
    [(resource, name, span)] = [
        s for s in receiver.spans if s[2].get("http.route") == "/v1/me/orders"
    ][:1]
    assert resource["service.name"] == SERVICE_NAME
    assert resource["service.version"] == "0.1.0"
    assert name == "GET /v1/me/orders"
    assert span["http.request.method"] == "GET"
    assert span["http.response.status_code"] == 401
    assert span["url.path"] == "/v1/me/orders"
    assert not {"http.method", "http.status_code", "http.target"} & set(span)
    # the webhook's fast path makes its server span with the same names
    fast = [
        attributes
        for _, name, attributes in receiver.spans
        if name == "POST /webhooks/stripe" and attributes.get("http.response.status_code") == 200
    ]
    assert fast, [name for _, name, _ in receiver.spans]
    assert fast[0]["http.request.method"] == "POST"
    assert fast[0]["url.path"] == fast[0]["http.route"] == "/webhooks/stripe"


async def a_redelivery_is_counted(
    billing: str, receiver: Receiver, database_url: str, durable: str, eventually: Any
) -> None:
    """With billing's inbox away for a moment, its consumer fails the next purchase; the
    retry is counted as a redelivery and the delivery is acked once the table is back."""
    group = {"messaging.consumer.group.name": durable}

    def latest(metric: str, **wanted: Any) -> float:
        points = receiver.named(metric, **wanted)
        return points[-1].value if points else 0

    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("ALTER TABLE inbox RENAME TO inbox_away")
        try:
            body, signature = purchase()
            async with httpx.AsyncClient(base_url=billing, timeout=10) as client:
                paid = await client.post(
                    "/webhooks/stripe",
                    content=body,
                    headers={"content-type": "application/json", "stripe-signature": signature},
                )
            assert paid.status_code == 200, paid.text

            async def retried() -> bool:
                return latest("tessera.consumer.deliveries", outcome="retried", **group) >= 1

            await eventually(retried, timeout=30)
        finally:
            await conn.execute("ALTER TABLE inbox_away RENAME TO inbox")
    finally:
        await conn.close()

    async def redelivered_and_acked() -> bool:
        return (
            latest("tessera.consumer.redeliveries", **group) >= 1
            and latest("tessera.consumer.deliveries", outcome="acked", **group) >= 2
        )

    # the next retry is at most 15 s away (the retry delays grow: 0.2, 1, 5, 15 s)
    await eventually(redelivered_and_acked, timeout=60)


async def test_a_stalled_consumers_lag_keeps_rising_and_falls_when_it_resumes(
    billing: str, receiver: Receiver, database_url: str, eventually: Any
) -> None:
    """The lag is sampled from JetStream, not only set at a delivery: while billing's
    consumer is stuck (its handlers wait on a lock of the inbox table, so nothing is acked),
    the purchases that arrive show as lag; once the lock goes, the lag falls back to 0."""
    durable = "billing__billing_purchase_completed_v1"
    group = {"messaging.consumer.group.name": durable}
    purchases = 6

    def latest_lag() -> float:
        points = receiver.named("tessera.consumer.lag", **group)
        return points[-1].value if points else -1

    async def sampled_at_zero() -> bool:
        return latest_lag() == 0

    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE inbox IN ACCESS EXCLUSIVE MODE")
            async with httpx.AsyncClient(base_url=billing, timeout=10) as client:
                for _ in range(purchases):
                    body, signature = purchase()
                    paid = await client.post(
                        "/webhooks/stripe",
                        content=body,
                        headers={
                            "content-type": "application/json",
                            "stripe-signature": signature,
                        },
                    )
                    assert paid.status_code == 200, paid.text

            async def lag_rose() -> bool:
                return latest_lag() >= purchases

            try:
                await eventually(lag_rose, timeout=30)
            except AssertionError:
                raise AssertionError(f"lag stayed at {latest_lag()}") from None
            # and it is sampled again while nothing is delivered, not frozen at a delivery
            count = len(receiver.named("tessera.consumer.lag", **group))

            async def sampled_again() -> bool:
                return len(receiver.named("tessera.consumer.lag", **group)) >= count + 2

            await eventually(sampled_again, timeout=10)
            assert latest_lag() >= purchases
    finally:
        await conn.close()
    await eventually(sampled_at_zero, timeout=30)


def test_the_older_tessera_variable_still_works_and_the_standard_one_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.setenv("TESSERA_OTEL_EXPORTER_OTLP_ENDPOINT", "http://old:4318")
    assert InfraSettings().otel_exporter_otlp_endpoint == "http://old:4318"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://standard:4318")
    assert InfraSettings().otel_exporter_otlp_endpoint == "http://standard:4318"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "custom")
    assert InfraSettings().otel_service_name == "custom"

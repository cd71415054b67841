"""One purchase is one OpenTelemetry trace: from the server span of billing's Stripe webhook,
through billing's provisioner, across NATS, to auth's and licensing's consumers and the
event licensing publishes in turn. The three services run in-process on a NATS of the
test's own, each on its own database; spans go to an in-memory exporter."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tessera.auth.app import create_app as create_auth
from tessera.auth.settings import AuthSettings
from tessera.billing.app import create_app as create_billing
from tessera.billing.checkout import stripe_shapes as shapes
from tessera.billing.settings import DEV_WEBHOOK_SECRET, BillingSettings
from tessera.licensing.app import create_app as create_licensing
from tessera.licensing.settings import LicensingSettings
from tessera.shared.telemetry import configure_tracing

pytestmark = pytest.mark.integration

SPANS = InMemorySpanExporter()
CATALOG = Path(__file__).resolve().parents[1] / "deploy" / "catalog.json"


@dataclass(frozen=True)
class Services:
    billing: FastAPI
    databases: dict[str, str]  # service -> its database's name


@pytest.fixture
async def services(
    database_factory: Any, own_nats: Any, infra_on: Any, running: Any, stand_in_streams: Any
) -> AsyncIterator[Services]:
    configure_tracing(
        "tests", extra_processors=(SimpleSpanProcessor(SPANS),), instrument_clients=True
    )
    infra = infra_on(own_nats.url)
    await stand_in_streams(own_nats.url, "WEBHOOKS")  # auth consumes it; webhooks is not run
    urls = {name: await database_factory(name) for name in ("billing", "auth", "licensing")}
    billing = create_billing(
        BillingSettings(database_url=urls["billing"], catalog_file=CATALOG), infra
    )
    auth = create_auth(AuthSettings(database_url=urls["auth"]), infra)
    licensing = create_licensing(LicensingSettings(database_url=urls["licensing"]), infra)
    async with running(billing), running(auth), running(licensing):
        for app in (billing, auth, licensing):
            await asyncio.wait_for(app.state.context.messaging_ready.wait(), 30)
        yield Services(billing, {name: url.rsplit("/", 1)[1] for name, url in urls.items()})


async def test_one_purchase_is_one_trace_from_the_webhook_to_every_consumer(
    services: Services, eventually: Any
) -> None:
    SPANS.clear()
    body, signature = signed_purchase(f"traced-{secrets.token_hex(4)}@example.com")
    transport = httpx.ASGITransport(app=services.billing)
    async with httpx.AsyncClient(transport=transport, base_url="http://billing") as stripe:
        answer = await stripe.post(
            "/webhooks/stripe",
            content=body,
            headers={"stripe-signature": signature, "content-type": "application/json"},
        )
    assert answer.is_success, answer.text

    # The webhook's server span starts the trace: Stripe sends no trace context.
    [webhook] = await eventually(lambda: server_spans("/webhooks/stripe"))
    assert webhook.parent is None
    purchase = Purchase(webhook, services.databases)
    try:
        await eventually(purchase.complete, timeout=30)
    except AssertionError:
        raise AssertionError(f"the trace holds only {names(purchase.spans())}") from None

    spans = purchase.spans()
    db = services.databases
    # billing's provisioner, then auth's and licensing's consumers, each once, in the trace
    assert len(consumers(spans, "billing.purchase.completed.v1", db["billing"])) == 1
    assert len(consumers(spans, "billing.account.created.v1", db["auth"])) == 1
    assert len(consumers(spans, "billing.account.created.v1", db["licensing"])) == 1
    assert len(consumers(spans, "billing.order.paid.v1", db["licensing"])) == 1
    # then billing's and licensing's consumers of the user auth made of the account
    assert len(consumers(spans, "auth.user.created.v1", db["billing"])) == 1
    assert len(consumers(spans, "auth.user.created.v1", db["licensing"])) == 1
    # and what licensing published in turn: the license it issued
    assert [s for s in spans if s.name == "outbox relay licensing.license.issued.v1"]
    # One tree: every span of the trace descends from the webhook's server span.
    assert all(root_of(span, spans) is webhook for span in spans), names(spans)


# ------------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Purchase:
    """The trace a purchase's webhook started."""

    webhook: ReadableSpan
    databases: dict[str, str]

    def spans(self) -> list[ReadableSpan]:
        trace_id = self.webhook.context.trace_id
        return [s for s in SPANS.get_finished_spans() if s.context.trace_id == trace_id]

    async def complete(self) -> bool:
        """Every consumer's span has finished, licensing has published the license, and
        every span's parent has finished too."""
        spans, db = self.spans(), self.databases
        return bool(
            consumers(spans, "billing.purchase.completed.v1", db["billing"])
            and consumers(spans, "billing.account.created.v1", db["auth"])
            and consumers(spans, "billing.account.created.v1", db["licensing"])
            and consumers(spans, "billing.order.paid.v1", db["licensing"])
            and consumers(spans, "auth.user.created.v1", db["billing"])
            and consumers(spans, "auth.user.created.v1", db["licensing"])
            and any(s.name == "outbox relay licensing.license.issued.v1" for s in spans)
            and all(root_of(span, spans) is not None for span in spans)
        )


def signed_purchase(email: str) -> tuple[bytes, str]:
    """A `checkout.session.completed` as Stripe sends it, signed with the dev secret."""
    session = shapes.checkout_session(
        session_id=shapes.stripe_id("cs"),
        email=email,
        sku="chartgpt-lifetime",
        quantity=1,
        amount_total=14900,
        currency="usd",
        customer=shapes.stripe_id("cus"),
        payment_intent=shapes.stripe_id("pi"),
    )
    return shapes.signed(shapes.event("checkout.session.completed", session), DEV_WEBHOOK_SECRET)


async def server_spans(route: str) -> list[ReadableSpan]:
    return [
        s
        for s in SPANS.get_finished_spans()
        if s.kind == SpanKind.SERVER and (s.attributes or {}).get("http.route") == route
    ]


def consumers(spans: Sequence[ReadableSpan], subject: str, database: str) -> list[ReadableSpan]:
    """The consumer spans of `subject` whose work went to `database`: which service consumed
    is told by the database its SQL ran on (one process hosts all three here)."""
    return [
        span
        for span in spans
        if span.kind == SpanKind.CONSUMER
        and span.name.endswith(f"{subject} process")
        and any(
            (child.attributes or {}).get("db.name") == database for child in own_work(span, spans)
        )
    ]


def own_work(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    """The spans below `span` down to, not into, the relay of what it published: the work
    of the events it led to belongs to their own consumers."""
    below = [
        s
        for s in spans
        if s.parent is not None
        and s.parent.span_id == span.context.span_id
        and not s.name.startswith("outbox relay")
    ]
    return below + [d for child in below for d in own_work(child, spans)]


def root_of(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> ReadableSpan | None:
    by_id = {s.context.span_id: s for s in spans}
    while span.parent is not None:
        parent = by_id.get(span.parent.span_id)
        if parent is None:
            return None  # a parent that never finished, or is in no trace we saw
        span = parent
    return span


def names(spans: Sequence[ReadableSpan]) -> list[str]:
    return sorted(s.name for s in spans)

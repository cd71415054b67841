"""Billing under test: the real app served over real HTTP (so the test checkout's
self-delivered webhooks travel the same path as Stripe's), on real Postgres, Redis and
JetStream, with helpers to sign events the way Stripe does and to read what billing
published."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import nats
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from tessera.billing.app import create_app
from tessera.billing.checkout import stripe_shapes as shapes
from tessera.billing.settings import BillingSettings
from tessera.devstack.infra import free_port
from tessera.devstack.serving import LoopServer
from tessera.devstack.stripe_standin.testing import API_KEY, StandInServer, running_standin
from tessera.devstack.stripe_standin.webhooks import Target
from tessera.shared.events.topology import AUTH, BILLING, Namespace
from tessera.shared.messaging import ensure_stream, stream_config
from tessera.shared.settings import InfraSettings

# --import-mode=importlib puts no test folder on sys.path; the Connect and catalog helpers
# of test_connect and test_catalog are shared with test_stripe_sync.
sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parents[3]
CATALOG = REPO / "deploy" / "catalog.json"
SECRET = "whsec_test_primary"
OLD_SECRET = "whsec_test_rotated_out"
SKU = "chartgpt-lifetime"
PRICE = 14900


@dataclass
class Billing:
    app: FastAPI
    url: str
    database_url: str
    settings: BillingSettings
    namespace: Namespace
    nats_url: str
    signing_key: Ed25519PrivateKey
    client: httpx.AsyncClient = field(init=False)
    served: LoopServer = field(init=False)

    async def stop(self) -> None:
        await self.client.aclose()
        await self.served.stop()

    @property
    def pool(self) -> asyncpg.Pool:
        pool: asyncpg.Pool = self.app.state.context.pool
        return pool

    async def deliver(
        self,
        event: dict[str, Any],
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        settle: bool = True,
    ) -> httpx.Response:
        """POST the event as Stripe would; by default, also wait until the applier has
        applied it (the ingress only records), so the test can look at its effects."""
        body, header = shapes.signed(event, secret, timestamp)
        response = await self.client.post(
            "/webhooks/stripe",
            content=body,
            headers={"stripe-signature": header, "content-type": "application/json"},
        )
        if settle and response.status_code == 200 and response.json()["status"] == "received":
            await self.settled(event["id"])
        return response

    async def settled(self, event_id: str, timeout: float = 10.0) -> str:
        """Wait until the applier has applied `event_id`; its recorded status."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            status = await self.value("SELECT status FROM stripe_events WHERE id = $1", event_id)
            if status not in (None, "received"):
                return str(status)
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{event_id} was not applied within {timeout}s")
            await asyncio.sleep(0.02)

    async def outcome(self, event: dict[str, Any], **options: Any) -> str:
        """Deliver `event` and return what applying it came to (processed, held, failed…)."""
        response = await self.deliver(event, **options)
        assert response.status_code == 200, response.text
        return await self.settled(event["id"])

    async def detail(self, event: dict[str, Any]) -> str:
        """Deliver `event` and return the detail its application recorded."""
        await self.outcome(event)
        return str(await self.value("SELECT detail FROM stripe_events WHERE id = $1", event["id"]))

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            return list(await conn.fetch(sql, *args))

    async def value(self, sql: str, *args: Any) -> Any:
        async with self.pool.acquire() as conn:
            return await conn.fetchval(sql, *args)

    async def published(self, subject: str) -> list[dict[str, Any]]:
        """Every message billing published on `subject` so far (read from the stream)."""
        nc = await nats.connect(self.nats_url)
        try:
            js = nc.jetstream()
            sub = await js.pull_subscribe(
                self.namespace.subject(subject), stream=self.namespace.stream(BILLING)
            )
            messages: list[dict[str, Any]] = []
            while True:
                try:
                    batch = await sub.fetch(100, timeout=0.3)
                except (TimeoutError, nats.errors.TimeoutError):
                    break
                messages.extend(json.loads(m.data) for m in batch)
            await sub.unsubscribe()
            return messages
        finally:
            await nc.close()

    def token(self, *, role: str = "customer", account_id: uuid.UUID | None = None) -> str:
        now = int(time.time())
        claims = {
            "iss": "tessera-auth", "aud": "tessera", "sub": str(uuid.uuid4()),
            "acc": str(account_id or uuid.uuid4()), "role": role, "sid": "s", "jti": "j",
            "iat": now, "exp": now + 300,
        }  # fmt: skip
        return jwt.encode(claims, self.signing_key, algorithm="EdDSA", headers={"kid": "test"})


def a_purchase(
    email: str = "buyer@example.com",
    *,
    quantity: int = 1,
    sku: str = SKU,
    payment_status: str = "paid",
    event_type: str = "checkout.session.completed",
    ids: dict[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """A Stripe `checkout.session.completed` event (and the ids it uses)."""
    ids = ids or {
        "session": shapes.stripe_id("cs"),
        "payment_intent": shapes.stripe_id("pi"),
        "customer": shapes.stripe_id("cus"),
        "charge": shapes.stripe_id("ch"),
    }
    session = shapes.checkout_session(
        session_id=ids["session"], email=email, sku=sku, quantity=quantity,
        amount_total=PRICE * quantity, currency="usd", customer=ids["customer"],
        payment_intent=ids["payment_intent"], payment_status=payment_status,
    )  # fmt: skip
    return shapes.event(event_type, session), ids


def a_refund(ids: dict[str, str], refunded: int, amount: int = PRICE) -> dict[str, Any]:
    charge = shapes.charge(
        charge_id=ids["charge"], amount=amount, currency="usd", customer=ids["customer"],
        payment_intent=ids["payment_intent"], amount_refunded=refunded,
    )  # fmt: skip
    return shapes.event("charge.refunded", charge)


def a_dispute(ids: dict[str, str], status: str, dispute_id: str | None = None) -> dict[str, Any]:
    dispute = shapes.dispute(
        dispute_id=dispute_id or f"dp_{ids['charge']}", charge_id=ids["charge"],
        payment_intent=ids["payment_intent"], amount=PRICE, currency="usd", status=status,
    )  # fmt: skip
    kind = (
        "charge.dispute.created"
        if status in ("needs_response", "warning_needs_response")
        else "charge.dispute.closed"
    )
    return shapes.event(kind, dispute)


def jwks_of(key: Ed25519PrivateKey) -> dict[str, Any]:
    public = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key()))
    return {"keys": [{**public, "kid": "test", "alg": "EdDSA", "use": "sig"}]}


async def auth_stream(infra: InfraSettings) -> None:
    nc = await nats.connect(str(infra.nats_url))
    try:
        await ensure_stream(nc.jetstream(), stream_config(AUTH, Namespace(infra.namespace)))
    finally:
        await nc.close()


async def start_billing(database_url: str, infra: InfraSettings, **overrides: Any) -> Billing:
    """Billing on a real port in this event loop; `await billing.stop()` ends it. Auth's
    stream, which billing reads, is declared as auth would."""
    await auth_stream(infra)
    port = free_port()
    settings = BillingSettings(
        database_url=database_url,
        catalog_file=CATALOG,
        public_url=f"http://127.0.0.1:{port}",
        stripe_webhook_secrets=[SECRET, OLD_SECRET],
        **overrides,
    )
    app = create_app(settings, infra)
    key = Ed25519PrivateKey.generate()
    app.state.context.token_verifier.jwks.load(jwks_of(key))
    app.state.context.token_verifier.jwks.max_age = 3600
    served = await LoopServer.start(app, port, lifespan="on")
    if settings.run_workers:
        await asyncio.wait_for(app.state.context.messaging_ready.wait(), 20)
    billing = Billing(app, f"http://127.0.0.1:{port}", database_url, settings,
                      Namespace(infra.namespace), str(infra.nats_url), key)  # fmt: skip
    billing.client = httpx.AsyncClient(base_url=billing.url, timeout=10)
    billing.served = served
    return billing


@pytest.fixture
async def billing(database_url: str, infra_settings: InfraSettings) -> AsyncIterator[Billing]:
    running = await start_billing(database_url, infra_settings)
    yield running
    await running.stop()


class StripeEvents:
    """Builders of Stripe-shaped events (a fixture, since test modules share no imports)."""

    purchase = staticmethod(a_purchase)
    refund = staticmethod(a_refund)
    dispute = staticmethod(a_dispute)
    secret = SECRET
    old_secret = OLD_SECRET
    sku = SKU
    price = PRICE


@pytest.fixture
def stripe_events() -> type[StripeEvents]:
    return StripeEvents


@pytest.fixture
def billing_starter() -> Any:
    """`await billing_starter(database_url, infra, **settings)` starts another billing
    (`await it.stop()` when done)."""
    return start_billing


@pytest.fixture
async def standin() -> AsyncIterator[StandInServer]:
    """The Stripe stand-in on a real port (its own webhook receivers record deliveries)."""
    async with running_standin() as server:
        yield server


@pytest.fixture
async def on_standin(
    database_url: str, infra_settings: InfraSettings, standin: StandInServer
) -> AsyncIterator[Billing]:
    """Billing with a key for the Stripe stand-in, which also delivers the platform's events
    to billing's ingress (and checkout outcomes may be polled freely)."""
    billing = await start_billing(
        database_url, infra_settings, stripe_secret_key=API_KEY, stripe_api_base=standin.url,
        stripe_sync_retry_seconds=0.2, checkout_status_rate_limit="10000/minute",
    )  # fmt: skip
    standin.standin.deliverer.add(Target(f"{billing.url}/webhooks/stripe", SECRET, False))
    try:
        yield billing
    finally:
        await billing.stop()

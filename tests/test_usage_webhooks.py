"""Cross-service: a customer's usage reaches the seller's threshold at licensing, and the
seller's own endpoint hears of it from the webhooks service, signed per Standard Webhooks:
licensing and webhooks each on its own database, real Postgres, Redis and NATS; the
threshold travels only as licensing's `licensing.usage.threshold_reached.v1` (outbox, relay,
the LICENSING stream, webhooks' inbox, its delivery queue) to a real HTTP receiver that
verifies the signature with the `standardwebhooks` library."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import nats
import pytest
from fastapi import FastAPI, Request, Response
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tessera.devstack.infra import free_port
from tessera.devstack.seller_keys import publish_seller_keys
from tessera.devstack.serving import LoopServer
from tessera.licensing.app import create_app as create_licensing
from tessera.licensing.settings import LicensingSettings
from tessera.shared.events.billing import SubscriptionGrants, SubscriptionStarted
from tessera.shared.events.envelope import Event
from tessera.shared.events.topology import (
    AUTH,
    BILLING,
    LICENSING,
    Namespace,
    stream_for_subject,
)
from tessera.shared.messaging import ensure_stream, stream_config
from tessera.shared.sellers import Tenant
from tessera.shared.settings import InfraSettings
from tessera.webhooks.app import create_app as create_webhooks
from tessera.webhooks.settings import WebhooksSettings

pytestmark = pytest.mark.integration

SELLER = Tenant(uuid.UUID("00000000-0000-4000-8000-0000000000e1"), "test")
NOW = datetime.now(UTC)


class Receiver:
    """The seller's endpoint: keeps every delivery whose signature verifies."""

    def __init__(self) -> None:
        self.secret = ""
        self.verified: list[dict[str, Any]] = []
        self.port = free_port()
        self.app = FastAPI()
        self.app.add_api_route("/hooks", self.handle, methods=["POST"])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        with contextlib.suppress(WebhookVerificationError):
            Webhook(self.secret).verify(body, dict(request.headers))
            self.verified.append(json.loads(body))
            return Response(status_code=204)
        return Response(status_code=400)


def subscribed(account: uuid.UUID, limit: int) -> SubscriptionStarted:
    grants = SubscriptionGrants(quotas={"api_calls": {"limit": limit}})
    return SubscriptionStarted(
        seller_id=SELLER.seller_id, mode=SELLER.mode, subscription_id=f"sub_{account.hex[:12]}",
        sequence=1, account_id=account, product="tool", tier="starter", grants=grants,
        interval="month", status="active", current_period_start=NOW - timedelta(days=1),
        current_period_end=NOW + timedelta(days=29), started_at=NOW - timedelta(days=1),
    )  # fmt: skip


async def until(seconds: float, condition: Any) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, f"not within {seconds} s"
        await asyncio.sleep(0.05)


async def publish(js: Any, ns: Namespace, event: Event) -> None:
    await js.publish(
        ns.subject(event.subject), event.to_json(),
        stream=ns.stream(stream_for_subject(event.subject)),
        headers={"Nats-Msg-Id": str(event.event_id)},
    )  # fmt: skip


async def test_a_usage_threshold_reaches_the_sellers_endpoint_signed_and_once(
    database_factory: Any, infra_settings: InfraSettings, running: Any
) -> None:
    ns = Namespace(infra_settings.namespace)
    licensing = create_licensing(
        LicensingSettings(database_url=await database_factory("licensing")), infra_settings
    )
    webhooks = create_webhooks(
        WebhooksSettings(database_url=await database_factory("webhooks"), poll_seconds=0.1),
        infra_settings,
    )
    receiver = Receiver()
    nc = await nats.connect(str(infra_settings.nats_url))
    js = nc.jetstream()
    served = await LoopServer.start(receiver.app, receiver.port)
    try:
        for stream in (AUTH, BILLING, LICENSING):
            await ensure_stream(js, stream_config(stream, ns))
        async with running(licensing), running(webhooks):
            for app in (licensing, webhooks):
                await asyncio.wait_for(app.state.context.messaging_ready.wait(), 30)
            texts = await publish_seller_keys(
                js, ns, licensing.state.context.key_book, licensing.state.context.sellers,
                [(SELLER, "secret")],
            )  # fmt: skip
            key = {"authorization": f"Bearer {texts[(SELLER, 'secret')]}"}
            hooks_http = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=webhooks), base_url="http://hooks"
            )
            usage_http = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=licensing), base_url="http://licensing"
            )
            async with hooks_http, usage_http:

                async def webhooks_knows_the_key() -> bool:
                    answer = await hooks_http.get("/v1/webhook-endpoints", headers=key)
                    return answer.status_code == 200

                await until(10, webhooks_knows_the_key)
                made = await hooks_http.post(
                    "/v1/webhook-endpoints",
                    json={"url": receiver.url, "event_types": ["usage.threshold_reached"]},
                    headers=key,
                )
                assert made.status_code == 201, made.text
                receiver.secret = made.json()["secret"]

                account = uuid.uuid4()
                await publish(js, ns, subscribed(account, limit=5))

                async def metered() -> bool:
                    answer = await usage_http.get(f"/v1/customers/{account}/usage", headers=key)
                    return answer.status_code == 200 and bool(answer.json()["features"])

                await until(10, metered)
                for n in range(5):
                    recorded = await usage_http.post(
                        "/v1/usage",
                        json={"customer": str(account), "feature": "api_calls",
                              "idempotency_key": f"call-{n}"},
                        headers=key,
                    )  # fmt: skip
                    assert recorded.status_code == 200, recorded.text

                async def both_heard() -> bool:
                    return len(receiver.verified) >= 2

                await until(20, both_heard)
                await asyncio.sleep(0.5)  # nothing more arrives (each threshold once)
    finally:
        await served.stop()
        await nc.close()
    heard = sorted(receiver.verified, key=lambda e: e["data"]["threshold"])
    assert [(e["type"], e["data"]["threshold"], e["data"]["used"]) for e in heard] == [
        ("usage.threshold_reached", 80, 4),
        ("usage.threshold_reached", 100, 5),
    ]
    assert {e["data"]["customer"] for e in heard} == {str(account)}
    assert all(e["data"]["limit"] == 5 and e["data"]["feature"] == "api_calls" for e in heard)

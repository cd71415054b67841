"""The stand-in on a real port for tests, with webhook receivers that record what it
delivers: `async with running_standin() as server:` (devtools' tests, and any service's
tests that talk to Stripe through it)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.devstack.infra import free_port
from tessera.devstack.serving import LoopServer
from tessera.devstack.stripe_standin.app import StandIn, create_app
from tessera.devstack.stripe_standin.settings import StandInSettings, WebhookTarget

if TYPE_CHECKING:
    # The official library is the stand-in's client, not a dependency of the dev tools:
    # it comes with billing, and only these helpers use it.
    import stripe

PLATFORM_SECRET = "whsec_platform_test"  # noqa: S105 (a test secret)
CONNECT_SECRET = "whsec_connect_test"  # noqa: S105
API_KEY = "sk_test_standin"


@dataclass
class Receiver:
    """A webhook endpoint: keeps each delivery's raw body and signature; answers 500 to
    the first `failures` deliveries (to see the stand-in retry)."""

    secret: str
    deliveries: list[tuple[str, str]] = field(default_factory=list)
    failures: int = 0

    async def receive(self, request: Request) -> Response:
        body = (await request.body()).decode()
        if self.failures > 0:
            self.failures -= 1
            return Response(status_code=500)
        self.deliveries.append((body, request.headers["stripe-signature"]))
        return Response(status_code=200)

    def events(self) -> list[Any]:
        """Every delivered event, its signature checked by the official library."""
        import stripe

        return [
            stripe.Webhook.construct_event(body, sig, self.secret) for body, sig in self.deliveries
        ]

    def types(self) -> list[str]:
        return [event["type"] for event in self.events()]


@dataclass
class StandInServer:
    url: str
    standin: StandIn
    platform: Receiver
    connect: Receiver
    # A third endpoint, for one registered through /v1/webhook_endpoints (set its secret).
    extra: Receiver
    extra_url: str

    async def delivered(self) -> None:
        """Until every event so far has been delivered (or given up on)."""
        await self.standin.deliverer.idle()

    def client(self, api_key: str = API_KEY) -> stripe.StripeClient:
        """The official client, as billing builds it, pointed at the stand-in."""
        import stripe

        return stripe.StripeClient(
            api_key,
            base_addresses={"api": self.url, "connect": self.url},
            # Sync too: the library's OAuth calls (`client.oauth.token`) have no async form.
            http_client=stripe.HTTPXClient(timeout=10, allow_sync_methods=True),
            max_network_retries=0,
            client_id="ca_standin",
        )


async def recurring_price(
    client: stripe.StripeClient,
    unit_amount: int = 1900,
    interval: Literal["day", "week", "month", "year"] = "month",
    product: str | None = None,
) -> str:
    """A recurring USD price's id, on `product` or on a new product."""
    if product is None:
        product = (await client.v1.products.create_async({"name": "Pro"})).id
    price = await client.v1.prices.create_async(
        {
            "product": product,
            "currency": "usd",
            "unit_amount": unit_amount,
            "recurring": {"interval": interval},
        }
    )
    return price.id


@contextlib.asynccontextmanager
async def running_standin(**settings: Any) -> AsyncIterator[StandInServer]:
    platform, connect, extra = Receiver(PLATFORM_SECRET), Receiver(CONNECT_SECRET), Receiver("")
    hooks = Starlette(
        routes=[
            Route("/platform", platform.receive, methods=["POST"]),
            Route("/connect", connect.receive, methods=["POST"]),
            Route("/extra", extra.receive, methods=["POST"]),
        ]
    )
    hooks_port, port = free_port(), free_port()
    hooks_server = await LoopServer.start(hooks, hooks_port)
    url = f"http://127.0.0.1:{port}"
    settings.setdefault("delivery_retries", (0.05, 0.05))
    app = create_app(
        StandInSettings(
            public_url=url,
            platform_webhook=WebhookTarget(
                f"http://127.0.0.1:{hooks_port}/platform", PLATFORM_SECRET
            ),
            connect_webhook=WebhookTarget(f"http://127.0.0.1:{hooks_port}/connect", CONNECT_SECRET),
            **settings,
        )
    )
    standin_server = await LoopServer.start(app, port)
    try:
        yield StandInServer(
            url, app.state.standin, platform, connect, extra, f"http://127.0.0.1:{hooks_port}/extra"
        )
    finally:
        await standin_server.stop(5)
        await hooks_server.stop(5)

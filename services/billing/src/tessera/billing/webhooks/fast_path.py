"""`POST /webhooks/stripe`'s common case, answered straight off the ASGI server.

Stripe retries whatever is not answered 2xx quickly, so the ingress's cost per delivery
is how big a burst billing absorbs. This layer (the kernel's `FastPath`) answers a
delivery that is within the limits, correctly signed and a Stripe event with the answer
the full stack gives, and a server span when traces are collected (a purchase's trace
starts here). Everything else (too big, unsigned, stale, malformed, over the rate limit,
a database that does not answer) goes down the full stack with the body replayed, so
each error is rendered by the one code that renders errors; a hit the limiter counted
here is taken back first, so the full stack counts it once.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Scope

from tessera.billing.context import Billing
from tessera.billing.webhooks.routes import CONNECT_PATH, PATH, limit_of
from tessera.billing.webhooks.schemas import acknowledgement
from tessera.billing.webhooks.service import ingest
from tessera.shared.http.context import client_ip
from tessera.shared.http.fast_path import Answer, FastPath
from tessera.shared.http.middleware import header
from tessera.shared.sellers import Tenant
from tessera.shared.service import NotConnected


class WebhookFastPath(FastPath):
    """The platform endpoint's (`ConnectFastPath`: the Connect endpoint's)."""

    path = PATH

    def __init__(
        self,
        stack: ASGIApp,
        billing: Billing,
        *,
        hsts: bool,
    ) -> None:
        super().__init__(stack, max_body_bytes=billing.settings.webhook_max_bytes, hsts=hsts)
        self.billing = billing

    async def answer(self, scope: Scope, body: bytes) -> Answer | None:
        billing = self.billing
        try:
            limiter, pool = billing.synced_limiter, billing.pool
        except NotConnected:
            return None  # not started yet: the full stack answers (a 503)
        hit = limit_of(billing, client_ip(scope))
        if not limiter.hit(hit).allowed:
            return None
        stripe_signature = header(scope, b"stripe-signature")
        try:
            outcome = await ingest(
                billing.settings,
                billing.deliveries,
                pool,
                self.platform(),
                body,
                stripe_signature.decode("latin-1") if stripe_signature is not None else None,
            )
        except Exception:
            limiter.undo(hit)
            return None
        return Answer(acknowledgement(outcome))

    def platform(self) -> Tenant | None:
        return self.billing.stripe_tenant


class ConnectFastPath(WebhookFastPath):
    path = CONNECT_PATH

    def platform(self) -> Tenant | None:
        return None  # each event's account names its tenant

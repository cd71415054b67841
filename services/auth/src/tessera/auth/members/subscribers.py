"""Auth consumes webhooks' `webhooks.endpoint.disabled.v1`: the seller's owners are mailed."""

from __future__ import annotations

from faststream.nats import NatsRouter

from tessera.auth.context import Auth
from tessera.auth.members import service
from tessera.shared.events.webhooks import EndpointDisabled
from tessera.shared.messaging import subscriber


def register(auth: Auth, router: NatsRouter) -> None:
    @subscriber(router, auth.name, auth.namespace, EndpointDisabled)
    async def on_endpoint_disabled(event: EndpointDisabled) -> None:
        """A webhook endpoint failed for days and was turned off: tell its owners."""
        await service.mail_endpoint_disabled(auth, event)

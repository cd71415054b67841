"""Licensing consumes billing's subscription events."""

from __future__ import annotations

from faststream.nats import NatsRouter

from tessera.licensing.context import Licensing
from tessera.licensing.entitlements import service
from tessera.shared.events.billing import (
    SubscriptionChanged,
    SubscriptionEnded,
    SubscriptionRenewed,
    SubscriptionStarted,
)
from tessera.shared.messaging import subscriber


def register(licensing: Licensing, router: NatsRouter) -> None:
    @subscriber(router, licensing.name, licensing.namespace, SubscriptionStarted)
    async def on_started(event: SubscriptionStarted) -> None:
        """A subscription's first state: the customer's entitlement to its product."""
        await service.on_subscription(licensing.pool, event)

    @subscriber(router, licensing.name, licensing.namespace, SubscriptionChanged)
    async def on_changed(event: SubscriptionChanged) -> None:
        """Tier, grants, status or period changed."""
        await service.on_subscription(licensing.pool, event)

    @subscriber(router, licensing.name, licensing.namespace, SubscriptionRenewed)
    async def on_renewed(event: SubscriptionRenewed) -> None:
        """A new period: the entitlement runs on."""
        await service.on_subscription(licensing.pool, event)

    @subscriber(router, licensing.name, licensing.namespace, SubscriptionEnded)
    async def on_ended(event: SubscriptionEnded) -> None:
        """Ended: the entitlement is no longer valid."""
        await service.on_subscription(licensing.pool, event)

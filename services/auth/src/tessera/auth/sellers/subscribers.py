"""Auth consumes billing's subscription events for the platform plan (sellers/plan.py)."""

from __future__ import annotations

from faststream.nats import NatsRouter

from tessera.auth.context import Auth
from tessera.auth.sellers import plan
from tessera.shared.events.billing import (
    SubscriptionChanged,
    SubscriptionEnded,
    SubscriptionRenewed,
    SubscriptionStarted,
)
from tessera.shared.messaging import subscriber


def register(auth: Auth, router: NatsRouter) -> None:
    @subscriber(router, auth.name, auth.namespace, SubscriptionStarted)
    async def on_started(event: SubscriptionStarted) -> None:
        """A seller's platform plan began (or any other subscription: ignored)."""
        await plan.on_subscription(auth.pool, event)

    @subscriber(router, auth.name, auth.namespace, SubscriptionChanged)
    async def on_changed(event: SubscriptionChanged) -> None:
        """Its status changed: active, past due (with grace), ..."""
        await plan.on_subscription(auth.pool, event)

    @subscriber(router, auth.name, auth.namespace, SubscriptionRenewed)
    async def on_renewed(event: SubscriptionRenewed) -> None:
        """A new period of the plan."""
        await plan.on_subscription(auth.pool, event)

    @subscriber(router, auth.name, auth.namespace, SubscriptionEnded)
    async def on_ended(event: SubscriptionEnded) -> None:
        """The plan ended: the seller's live keys stop working."""
        await plan.on_subscription(auth.pool, event)

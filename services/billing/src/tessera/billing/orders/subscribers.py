"""Billing's provisioner: consumes its own `billing.purchase.completed.v1`."""

from __future__ import annotations

from faststream.nats import NatsRouter

from tessera.billing.context import Billing
from tessera.billing.orders import service
from tessera.shared.events.billing import PurchaseCompleted
from tessera.shared.messaging import subscriber


def register(billing: Billing, router: NatsRouter) -> None:
    @subscriber(router, billing.name, billing.namespace, PurchaseCompleted)
    async def on_purchase_completed(event: PurchaseCompleted) -> None:
        """Find or create the buyer's account; publish the paid order (and any refund or
        dispute that arrived before it)."""
        await service.provision(billing.pool, event)

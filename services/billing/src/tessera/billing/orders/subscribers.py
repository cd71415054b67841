"""Billing's provisioner: consumes its own `billing.purchase.completed.v1`."""

from __future__ import annotations

from faststream.nats import NatsRouter

from tessera.billing.orders import service
from tessera.shared.events.billing import PurchaseCompleted
from tessera.shared.messaging import subscriber
from tessera.shared.service import Runtime


def register(runtime: Runtime, router: NatsRouter) -> None:
    @subscriber(router, runtime.name, runtime.namespace, PurchaseCompleted)
    async def on_purchase_completed(event: PurchaseCompleted) -> None:
        """Find or create the buyer's account; publish the paid order (and any refund or
        dispute that arrived before it)."""
        await service.provision(runtime.db(), event)

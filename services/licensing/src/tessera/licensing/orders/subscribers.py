"""Licensing consumes billing's order events."""

from __future__ import annotations

from faststream.nats import NatsRouter

from tessera.licensing.orders import service
from tessera.licensing.state import Licensing
from tessera.shared.events.billing import (
    OrderDisputeClosed,
    OrderDisputed,
    OrderPaid,
    OrderRefunded,
)
from tessera.shared.messaging import subscriber
from tessera.shared.service import Runtime


def register(runtime: Runtime, router: NatsRouter, state: Licensing) -> None:
    @subscriber(router, runtime.name, runtime.namespace, OrderPaid)
    async def on_order_paid(event: OrderPaid) -> None:
        """Issue one license per seat the order bought (held if the policy is unknown)."""
        await service.on_paid(runtime.db(), state.sealer, event)

    @subscriber(router, runtime.name, runtime.namespace, OrderRefunded)
    async def on_order_refunded(event: OrderRefunded) -> None:
        """A full refund revokes the order's licenses."""
        await service.on_refunded(runtime.db(), event)

    @subscriber(router, runtime.name, runtime.namespace, OrderDisputed)
    async def on_order_disputed(event: OrderDisputed) -> None:
        """A dispute suspends the order's licenses."""
        await service.on_disputed(runtime.db(), event)

    @subscriber(router, runtime.name, runtime.namespace, OrderDisputeClosed)
    async def on_order_dispute_closed(event: OrderDisputeClosed) -> None:
        """Won: reinstate; lost: revoke."""
        await service.on_dispute_closed(runtime.db(), event)

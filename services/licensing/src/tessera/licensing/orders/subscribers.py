"""Licensing consumes billing's order events."""

from __future__ import annotations

from faststream.nats import NatsRouter

from tessera.licensing.context import Licensing
from tessera.licensing.orders import service
from tessera.shared.events.billing import (
    OrderDisputeClosed,
    OrderDisputed,
    OrderPaid,
    OrderRefunded,
)
from tessera.shared.messaging import subscriber


def register(licensing: Licensing, router: NatsRouter) -> None:
    @subscriber(router, licensing.name, licensing.namespace, OrderPaid)
    async def on_order_paid(event: OrderPaid) -> None:
        """Issue one license per seat the order bought (held if the policy is unknown)."""
        await service.on_paid(licensing.pool, licensing.sealer, event)

    @subscriber(router, licensing.name, licensing.namespace, OrderRefunded)
    async def on_order_refunded(event: OrderRefunded) -> None:
        """A full refund revokes the order's licenses."""
        await service.on_refunded(licensing.pool, event)

    @subscriber(router, licensing.name, licensing.namespace, OrderDisputed)
    async def on_order_disputed(event: OrderDisputed) -> None:
        """A dispute suspends the order's licenses."""
        await service.on_disputed(licensing.pool, event)

    @subscriber(router, licensing.name, licensing.namespace, OrderDisputeClosed)
    async def on_order_dispute_closed(event: OrderDisputeClosed) -> None:
        """Won: reinstate; lost: revoke."""
        await service.on_dispute_closed(licensing.pool, event)

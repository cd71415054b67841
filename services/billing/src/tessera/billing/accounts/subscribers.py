"""Billing consumes `auth.user.created.v1`: the accounts of customers auth makes."""

from __future__ import annotations

from faststream.nats import NatsRouter

from tessera.billing.accounts import service
from tessera.billing.context import Billing
from tessera.shared.events.auth import UserCreated
from tessera.shared.messaging import subscriber


def register(billing: Billing, router: NatsRouter) -> None:
    @subscriber(router, billing.name, billing.namespace, UserCreated)
    async def on_user_created(event: UserCreated) -> None:
        """Know the customer's account, so the seller's routes answer for it."""
        await service.remember_user_account(billing.pool, event)

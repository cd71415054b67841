"""Licensing consumes `billing.account.created.v1` and `auth.user.created.v1`."""

from __future__ import annotations

from faststream.nats import NatsRouter

from tessera.licensing.context import Licensing
from tessera.licensing.customers import service
from tessera.shared.events.auth import UserCreated
from tessera.shared.events.billing import AccountCreated
from tessera.shared.messaging import subscriber


def register(licensing: Licensing, router: NatsRouter) -> None:
    @subscriber(router, licensing.name, licensing.namespace, AccountCreated)
    async def on_account_created(event: AccountCreated) -> None:
        """Remember the account so licenses can be bound to it."""
        await service.register_customer(licensing.pool, event)

    @subscriber(router, licensing.name, licensing.namespace, UserCreated)
    async def on_user_created(event: UserCreated) -> None:
        """Remember the account of a customer auth made (no purchase yet), so a seller's
        grant for it finds it."""
        await service.register_user_account(licensing.pool, event)

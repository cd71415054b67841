"""Licensing consumes `billing.account.created.v1`."""

from __future__ import annotations

from faststream.nats import NatsRouter

from tessera.licensing.customers import service
from tessera.shared.events.billing import AccountCreated
from tessera.shared.messaging import subscriber
from tessera.shared.service import Runtime


def register(runtime: Runtime, router: NatsRouter) -> None:
    @subscriber(router, runtime.name, runtime.namespace, AccountCreated)
    async def on_account_created(event: AccountCreated) -> None:
        """Remember the account so licenses can be bound to it."""
        await service.register_customer(runtime.db(), event)

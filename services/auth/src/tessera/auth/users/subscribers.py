"""Auth consumes `billing.account.created.v1`."""

from __future__ import annotations

from faststream.nats import NatsRouter

from tessera.auth.context import Auth
from tessera.auth.users import service
from tessera.shared.events.billing import AccountCreated
from tessera.shared.messaging import subscriber


def register(auth: Auth, router: NatsRouter) -> None:
    admins = [str(a) for a in auth.settings.bootstrap_admins]

    @subscriber(router, auth.name, auth.namespace, AccountCreated)
    async def on_account_created(event: AccountCreated) -> None:
        """Create the account's user (closed signup: this is the only way in)."""
        await service.create_user_for_account(auth.pool, event, admins)

"""Auth consumes `billing.account.created.v1`."""

from __future__ import annotations

from faststream.nats import NatsRouter

from tessera.auth.settings import AuthSettings
from tessera.auth.users import service
from tessera.shared.events.billing import AccountCreated
from tessera.shared.messaging import subscriber
from tessera.shared.service import Runtime


def register(runtime: Runtime, router: NatsRouter) -> None:
    settings = runtime.settings
    admins = (
        [str(a) for a in settings.bootstrap_admins] if isinstance(settings, AuthSettings) else []
    )

    @subscriber(router, runtime.name, runtime.namespace, AccountCreated)
    async def on_account_created(event: AccountCreated) -> None:
        """Create the account's user (closed signup: this is the only way in)."""
        await service.create_user_for_account(runtime.db(), event, admins)

"""Which Stripe account a tenant's objects go to, and with which key: the one place that
decides (the catalog sync, checkout and Connect all ask it).

The platform's key (`stripe_secret_key`) serves the tenant billing's own Stripe account is:
the home seller's, live (`Billing.stripe_tenant`). Every other tenant is served on the
account its seller connected for that mode (Connect, `stripe_connections`), reached with
the platform's key of the same Stripe mode and the account sent as `Stripe-Account`: a
test-mode tenant through a test key (`sk_test_`), a live one through a live key. Until its
seller connects one, a tenant waits in `awaiting_connect`; with no key at all everything
stays `local` (offline development)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import asyncpg
import stripe

from tessera.billing.settings import key_mode
from tessera.billing.stripe import connections
from tessera.shared.sellers import HOME_LIVE, Mode, Tenant

# Why a tenant's objects are not synced now: no key configured, or no account connected.
Waiting = Literal["local", "awaiting_connect"]


@dataclass(frozen=True)
class StripeAccount:
    client: stripe.StripeClient
    # A connected account's id (sent as `Stripe-Account`); None: the platform's own.
    account: str | None = None

    @property
    def connected(self) -> bool:
        return self.account is not None


@dataclass(frozen=True)
class Accounts:
    """The platform's client (None: no key configured), the tenant it serves, and the
    platform's clients by the Stripe mode of their key, which reach connected accounts."""

    platform: stripe.StripeClient | None
    served: Tenant
    by_mode: Mapping[Mode, stripe.StripeClient] = field(default_factory=dict)

    def client_for(self, mode: Mode) -> stripe.StripeClient | None:
        """The platform's client that acts on a `mode` tenant's connected account (and
        makes its connection): None when the platform has no key of that Stripe mode."""
        return self.by_mode.get(mode)

    async def account_for(
        self, conn: asyncpg.Connection, tenant: Tenant
    ) -> StripeAccount | Waiting:
        """The account the tenant's objects go to, or why there is none: `local` (no key)
        or `awaiting_connect`."""
        if self.platform is None:
            return "local"
        if tenant == self.served:
            return StripeAccount(self.platform)
        client = self.client_for(tenant.mode)
        account = await connections.connected_account(conn, tenant)
        if client is None or account is None:
            return "awaiting_connect"
        return StripeAccount(client, account)

    async def initial_state(
        self, conn: asyncpg.Connection, tenant: Tenant
    ) -> Literal["pending"] | Waiting:
        """The state a changed object of the tenant starts in. Takes the tenant's connection
        lock (shared) to the end of the caller's transaction, so a connection committing
        meanwhile cannot miss the row (connect/service.py queues what waits for it)."""
        await connections.lock_tenant(conn, tenant, shared=True)
        account = await self.account_for(conn, tenant)
        return "pending" if isinstance(account, StripeAccount) else account


def platform_accounts(
    platform: stripe.StripeClient | None,
    platform_key: str | None = None,
    test_client: stripe.StripeClient | None = None,
) -> Accounts:
    """The platform's key serves the home seller's live tenant (`Billing.stripe_tenant`) and
    connected accounts of its own Stripe mode; `test_client` (a test key beside a live
    one) the test-mode tenants' connected accounts."""
    by_mode: dict[Mode, stripe.StripeClient] = {}
    if platform is not None and platform_key is not None:
        by_mode[key_mode(platform_key)] = platform
    if test_client is not None:
        by_mode.setdefault("test", test_client)
    return Accounts(platform, HOME_LIVE, by_mode)


# No key: every change stays `local` (offline development, tests without Stripe).
OFFLINE = platform_accounts(None)

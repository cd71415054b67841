"""Which Stripe account a tenant's catalog goes to, and with which key: the one place that
decides (Connect, issue 17 part 2, changes only this).

Today the platform's key (`stripe_secret_key`) serves the tenant billing's Stripe account
is: the home seller's, live (`Billing.stripe_tenant`). Every other tenant waits in
`awaiting_connect` until its seller connects its own account; with no key at all the
catalog stays `local` (offline development)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import stripe

from tessera.shared.sellers import HOME_LIVE, Tenant

# Why a tenant's objects are not synced now: no key configured, or no account connected.
Waiting = Literal["local", "awaiting_connect"]


@dataclass(frozen=True)
class StripeAccount:
    client: stripe.StripeClient
    # A connected account's id (sent as `Stripe-Account`); None: the platform's own.
    account: str | None = None


@dataclass(frozen=True)
class Accounts:
    """The platform's client (None: no key configured) and the tenant it serves."""

    platform: stripe.StripeClient | None
    served: Tenant

    def account_for(self, tenant: Tenant) -> StripeAccount | Waiting:
        """The account the tenant's objects are synced to, or why there is none:
        `local` (no key) or `awaiting_connect`."""
        if self.platform is None:
            return "local"
        if tenant != self.served:
            return "awaiting_connect"
        return StripeAccount(self.platform)

    def initial_state(self, tenant: Tenant) -> Literal["pending"] | Waiting:
        """The state a changed object of the tenant starts in."""
        account = self.account_for(tenant)
        return "pending" if isinstance(account, StripeAccount) else account


def platform_accounts(platform: stripe.StripeClient | None) -> Accounts:
    """The platform's key serves the home seller's live tenant (`Billing.stripe_tenant`)."""
    return Accounts(platform, HOME_LIVE)


# No key: every change stays `local` (offline development, tests without Stripe).
OFFLINE = platform_accounts(None)

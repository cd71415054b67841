"""What billing holds while it runs, beside the kernel's connections: its settings, the
Stripe gateway (None in the test checkout) and the webhook ingress's group-commit recorder.
Built in `app.create_app`; routes reach it with `BillingDep`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends

from tessera.billing.settings import BillingSettings
from tessera.billing.stripe.accounts import OFFLINE, Accounts
from tessera.billing.stripe.gateway import StripeGateway
from tessera.billing.stripe_events.recorder import DeliveryRecorder
from tessera.shared.events.auth import SellerSettings
from tessera.shared.sellers import HOME_LIVE, Tenant
from tessera.shared.service import ServiceContext, context_dependency
from tessera.shared.settings import InfraSettings
from tessera.shared.synced_limits import Rule

# Whose data the operator's admin routes and CLI act on: the home seller's, live (the
# admin role is the operator's; a seller's own dashboard comes with its keys).
OPERATOR_TENANT = HOME_LIVE
# Whose catalog and checkout the public routes serve until a publishable key names the
# seller (docs/sellers.md): the home seller's, live.
PUBLIC_TENANT = HOME_LIVE


@dataclass(eq=False, kw_only=True)
class Billing(ServiceContext[BillingSettings]):
    name: str = "billing"
    # None: no Stripe key, so checkouts go to the test checkout's own pages.
    stripe: StripeGateway | None = None
    deliveries: DeliveryRecorder = field(default_factory=DeliveryRecorder)
    # Whose Stripe account the platform's ingress (`/webhooks/stripe`) hears: the home
    # seller's, live. Connected accounts' events come to `/webhooks/stripe/connect` and are
    # each their account's tenant's (webhooks/routing.py).
    stripe_tenant: Tenant = HOME_LIVE
    # Which Stripe account each tenant's catalog is synced to (stripe/accounts.py).
    accounts: Accounts = OFFLINE
    # The seller API's budget per API key, counted by key id.
    per_seller_key: Rule = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.per_seller_key = Rule.parse("seller-key", self.settings.seller_key_rate_limit)

    def grace_days(self, tenant: Tenant) -> int:
        """The seller's `past_due_grace_days` (SellerBook; the default for one not known)."""
        entry = self.sellers.by_id(tenant.seller_id)
        settings = entry.settings if entry is not None else SellerSettings()
        return settings.past_due_grace_days

    @classmethod
    def of(cls, settings: BillingSettings, infra: InfraSettings) -> Billing:
        gateway = None if settings.test_checkout else StripeGateway(settings)
        accounts = gateway.accounts() if gateway else OFFLINE
        return cls(settings=settings, infra=infra, stripe=gateway, accounts=accounts)


BillingDep = Annotated[Billing, Depends(context_dependency(Billing))]

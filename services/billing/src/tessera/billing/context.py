"""What billing holds while it runs, beside the kernel's connections: its settings, the
Stripe gateway (None in the test checkout) and the webhook ingress's group-commit recorder.
Built in `app.create_app`; routes reach it with `BillingDep`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends

from tessera.billing.settings import BillingSettings
from tessera.billing.stripe.gateway import StripeGateway
from tessera.billing.stripe_events.recorder import DeliveryRecorder
from tessera.shared.service import ServiceContext, context_dependency
from tessera.shared.settings import InfraSettings


@dataclass(eq=False, kw_only=True)
class Billing(ServiceContext[BillingSettings]):
    name: str = "billing"
    # None: no Stripe key, so checkouts go to the test checkout's own pages.
    stripe: StripeGateway | None = None
    deliveries: DeliveryRecorder = field(default_factory=DeliveryRecorder)

    @classmethod
    def of(cls, settings: BillingSettings, infra: InfraSettings) -> Billing:
        gateway = None if settings.test_checkout else StripeGateway(settings)
        return cls(settings=settings, infra=infra, stripe=gateway)


BillingDep = Annotated[Billing, Depends(context_dependency(Billing))]

"""Events produced by billing (stream BILLING)."""

from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from pydantic import EmailStr, Field

from tessera.shared.events.envelope import Event


class BillingEvent(Event):
    producer: Literal["billing"] = "billing"


class PurchaseCompleted(BillingEvent):
    """A paid checkout was recorded by the Stripe ingress; the provisioner turns it into an
    account and an order."""

    subject: ClassVar[str] = "billing.purchase.completed.v1"

    stripe_event_id: str
    checkout_session_id: str
    email: EmailStr
    sku: str
    quantity: int = Field(ge=1)
    amount_total: int = Field(ge=0, description="Minor units (cents).")
    currency: str = Field(min_length=3, max_length=3)
    stripe_customer_id: str | None = None
    payment_intent_id: str | None = None


class AccountCreated(BillingEvent):
    """A new account exists (from a purchase or an admin); published once per account."""

    subject: ClassVar[str] = "billing.account.created.v1"

    account_id: UUID
    email: EmailStr
    source: Literal["purchase", "admin"] = "purchase"

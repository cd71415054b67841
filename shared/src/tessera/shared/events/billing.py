"""Events produced by billing (stream BILLING)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from tessera.shared.events.envelope import Event


class BillingEvent(Event):
    producer: Literal["billing"] = "billing"


class StripeRefs(BaseModel):
    """Stripe's ids for an order, so any consumer can point an operator at the dashboard."""

    model_config = ConfigDict(frozen=True)

    checkout_session_id: str | None = None
    payment_intent_id: str | None = None
    charge_id: str | None = None
    customer_id: str | None = None


class PurchaseCompleted(BillingEvent):
    """A paid checkout was recorded by the Stripe ingress; the provisioner turns it into an
    account and an order."""

    subject: ClassVar[str] = "billing.purchase.completed.v1"

    stripe_event_id: str
    checkout_session_id: str
    order_id: UUID | None = None
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


class OrderPaid(BillingEvent):
    """An order is paid (a purchase, or an admin grant): licensing issues what it grants.
    Published once per order."""

    subject: ClassVar[str] = "billing.order.paid.v1"

    order_id: UUID
    account_id: UUID
    email: EmailStr
    sku: str
    quantity: int = Field(ge=1)
    amount_total: int = Field(ge=0, description="Minor units (cents); 0 for a grant.")
    currency: str = Field(min_length=3, max_length=3)
    # What the SKU grants, from billing's catalog, so licensing needs no copy of it.
    product: str
    policy: str
    seats: int = Field(ge=1, description="Licenses to issue: quantity x seats per unit.")
    source: Literal["purchase", "admin"] = "purchase"
    stripe: StripeRefs = StripeRefs()


class OrderRefunded(BillingEvent):
    """Money went back. Only a full refund (`full=True`) takes back what the order granted."""

    subject: ClassVar[str] = "billing.order.refunded.v1"

    order_id: UUID
    account_id: UUID
    amount_refunded: int = Field(ge=0, description="Total refunded so far, minor units.")
    currency: str = Field(min_length=3, max_length=3)
    full: bool
    stripe: StripeRefs = StripeRefs()


class OrderDisputed(BillingEvent):
    """The buyer's bank opened a dispute: what the order granted is suspended meanwhile."""

    subject: ClassVar[str] = "billing.order.disputed.v1"

    order_id: UUID
    account_id: UUID
    dispute_id: str
    reason: str | None = None
    stripe: StripeRefs = StripeRefs()


class OrderDisputeClosed(BillingEvent):
    """The dispute ended: `won` reinstates what it suspended, `lost` revokes it."""

    subject: ClassVar[str] = "billing.order.dispute_closed.v1"

    order_id: UUID
    account_id: UUID
    dispute_id: str
    outcome: Literal["won", "lost"]
    stripe: StripeRefs = StripeRefs()


# ---------------------------------------------------------------- subscriptions


class SubscriptionQuota(BaseModel):
    model_config = ConfigDict(frozen=True)

    limit: int | None = Field(description="Units per billing period; null: unlimited.")


class SubscriptionGrants(BaseModel):
    """What the subscription's tier grants (billing's catalog, `tiers.grants`)."""

    model_config = ConfigDict(frozen=True)

    features: list[str] = []
    quotas: dict[str, SubscriptionQuota] = {}
    rate_per_minute: int | None = None
    seats: int = 1


SubscriptionStatus = Literal[
    "incomplete", "incomplete_expired", "trialing", "active", "past_due", "canceled",
    "unpaid", "paused",
]  # fmt: skip


class SubscriptionEvent(BillingEvent):
    """A subscription's whole state as billing computed it (docs/billing.md, "Subscriptions").
    `sequence` goes up by one with every event of the subscription: a consumer keeps the
    highest it has seen, so late or repeated deliveries change nothing."""

    subscription_id: str = Field(description="Stripe's subscription id.")
    sequence: int = Field(ge=1)
    account_id: UUID = Field(description="The customer (billing's account id).")
    product: str
    tier: str
    grants: SubscriptionGrants
    interval: Literal["month", "year"]
    status: SubscriptionStatus
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool = False
    trial_end: datetime | None = None
    past_due_since: datetime | None = None
    grace_until: datetime | None = Field(
        default=None,
        description="While past_due: past_due_since + the seller's past_due_grace_days.",
    )
    started_at: datetime
    stripe_account: str | None = None
    stripe_customer_id: str | None = None
    platform_for: UUID | None = Field(
        default=None,
        description="The paying seller a home-seller live subscription's metadata names; "
        'a platform plan only when `tier` is `platform` (docs/sellers.md, "Platform plan").',
    )


class SubscriptionStarted(SubscriptionEvent):
    """A subscription's first state billing can announce (its customer known)."""

    subject: ClassVar[str] = "billing.subscription.started.v1"


class SubscriptionChanged(SubscriptionEvent):
    """Its tier, interval, status, trial or cancellation changed."""

    subject: ClassVar[str] = "billing.subscription.changed.v1"


class SubscriptionRenewed(SubscriptionEvent):
    """A new period began."""

    subject: ClassVar[str] = "billing.subscription.renewed.v1"


class SubscriptionEnded(SubscriptionEvent):
    """It ended (canceled, or its first payment never came): final."""

    subject: ClassVar[str] = "billing.subscription.ended.v1"

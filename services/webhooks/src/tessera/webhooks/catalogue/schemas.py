"""The public event catalogue, version 1 (docs/webhooks.md, "Event catalogue").

What a seller's endpoint receives: `{"id", "type", "api_version", "timestamp", "data"}`,
with `data` the public shape of the thing that changed. These models, not the internal bus
messages, are the contract: fields are only ever added within a version; a change that
would break a receiver is a new version. Internal details (Stripe ids, the platform plan,
the producer) stay out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

API_VERSION = "v1"


class PublicModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ------------------------------------------------------------------------------- data


class CustomerData(PublicModel):
    id: UUID = Field(description="The customer's id (as in the seller API's customer paths).")
    email: str


class OrderData(PublicModel):
    id: UUID = Field(description="The order's id.")
    customer: UUID = Field(description="The customer's id.")
    email: str = Field(description="The buyer's email address.")
    sku: str
    quantity: int = Field(ge=1)
    amount_total: int = Field(ge=0, description="Minor units (cents); 0 for a grant.")
    currency: str = Field(description="ISO 4217 code, lower case (`usd`).")
    product: str
    policy: str
    seats: int = Field(ge=1, description="Licenses the order grants.")
    source: Literal["purchase", "admin"]


class OrderRefundData(PublicModel):
    id: UUID = Field(description="The order's id.")
    customer: UUID
    amount_refunded: int = Field(ge=0, description="Total refunded so far, minor units.")
    currency: str
    full: bool = Field(description="True once the whole amount is refunded.")


class OrderDisputeData(PublicModel):
    id: UUID = Field(description="The order's id.")
    customer: UUID
    dispute_id: str
    reason: str | None = None


class OrderDisputeClosedData(PublicModel):
    id: UUID = Field(description="The order's id.")
    customer: UUID
    dispute_id: str
    outcome: Literal["won", "lost"]


class SubscriptionData(PublicModel):
    id: str = Field(description="The subscription's id.")
    sequence: int = Field(
        ge=1,
        description="Grows by one with each event of this subscription: events may arrive "
        "out of order, so keep the state with the highest.",
    )
    customer: UUID
    product: str
    tier: str
    interval: Literal["month", "year"]
    status: Literal[
        "incomplete", "incomplete_expired", "trialing", "active", "past_due", "canceled",
        "unpaid", "paused",
    ]  # fmt: skip
    features: list[str] = Field(description="What the tier grants.")
    seats: int = Field(ge=1)
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool
    trial_end: datetime | None = None
    grace_until: datetime | None = Field(
        default=None, description="While past_due: it keeps working until then."
    )
    started_at: datetime


class LicenseData(PublicModel):
    id: UUID = Field(description="The license's id.")
    customer: UUID
    product: str
    order: UUID | None = Field(default=None, description="The order that granted it, if any.")


class LicenseIssuedData(LicenseData):
    policy: str


class LicenseStatusData(LicenseData):
    reason: str


class UsageThresholdData(PublicModel):
    customer: UUID
    feature: str = Field(description="The metered feature (as in `POST /v1/usage`).")
    threshold: int = Field(ge=1, le=100, description="The percent of the limit reached.")
    used: int = Field(ge=0, description="The period's count when it was reached.")
    limit: int = Field(ge=0)
    tier: str
    period_start: datetime
    period_end: datetime


class TestData(PublicModel):
    endpoint: UUID = Field(description="The endpoint the test was asked for.")
    message: str


# ------------------------------------------------------------------------------ events


class PublicEvent(PublicModel):
    id: str = Field(
        pattern=r"^evt_[0-9a-f]{32}$",
        description="Stable per event: the `webhook-id` header; the same on every retry and "
        "replay, so a receiver drops what it has seen.",
    )
    type: str
    api_version: Literal["v1"] = "v1"
    timestamp: datetime = Field(description="When the change happened.")
    data: PublicModel


class CustomerCreated(PublicEvent):
    """A customer exists (signed up, or created through the seller API or a purchase)."""

    type: Literal["customer.created"] = "customer.created"
    data: CustomerData


class OrderPaid(PublicEvent):
    """An order is paid (a checkout, or a grant)."""

    type: Literal["order.paid"] = "order.paid"
    data: OrderData


class OrderRefunded(PublicEvent):
    """Money went back; `full` says whether the whole order is refunded."""

    type: Literal["order.refunded"] = "order.refunded"
    data: OrderRefundData


class OrderDisputed(PublicEvent):
    """The buyer's bank opened a dispute; what the order granted is suspended meanwhile."""

    type: Literal["order.disputed"] = "order.disputed"
    data: OrderDisputeData


class OrderDisputeClosed(PublicEvent):
    """The dispute ended: won (reinstated) or lost (revoked)."""

    type: Literal["order.dispute_closed"] = "order.dispute_closed"
    data: OrderDisputeClosedData


class SubscriptionStarted(PublicEvent):
    """A subscription's first state."""

    type: Literal["subscription.started"] = "subscription.started"
    data: SubscriptionData


class SubscriptionChanged(PublicEvent):
    """Its tier, interval, status, trial or cancellation changed."""

    type: Literal["subscription.changed"] = "subscription.changed"
    data: SubscriptionData


class SubscriptionRenewed(PublicEvent):
    """A new period began."""

    type: Literal["subscription.renewed"] = "subscription.renewed"
    data: SubscriptionData


class SubscriptionEnded(PublicEvent):
    """It ended: final."""

    type: Literal["subscription.ended"] = "subscription.ended"
    data: SubscriptionData


class LicenseIssued(PublicEvent):
    """A license was issued (for an order, or granted)."""

    type: Literal["license.issued"] = "license.issued"
    data: LicenseIssuedData


class LicenseSuspended(PublicEvent):
    """A license was suspended (a dispute, or by the seller)."""

    type: Literal["license.suspended"] = "license.suspended"
    data: LicenseStatusData


class LicenseReinstated(PublicEvent):
    """A suspended license works again."""

    type: Literal["license.reinstated"] = "license.reinstated"
    data: LicenseStatusData


class LicenseRevoked(PublicEvent):
    """A license was revoked for good (a refund, a lost dispute, or by the seller)."""

    type: Literal["license.revoked"] = "license.revoked"
    data: LicenseStatusData


class UsageThresholdReached(PublicEvent):
    """A customer's usage of a metered feature reached one of the seller's thresholds (80
    and 100 % of the period's limit by default): once per period and threshold."""

    type: Literal["usage.threshold_reached"] = "usage.threshold_reached"
    data: UsageThresholdData


class WebhookTest(PublicEvent):
    """Sent by `POST /v1/webhook-endpoints/{id}/test` to that endpoint only."""

    type: Literal["webhook.test"] = "webhook.test"
    data: TestData


CATALOGUE: dict[str, type[PublicEvent]] = {
    str(model.model_fields["type"].default): model
    for model in (
        CustomerCreated,
        OrderPaid,
        OrderRefunded,
        OrderDisputed,
        OrderDisputeClosed,
        SubscriptionStarted,
        SubscriptionChanged,
        SubscriptionRenewed,
        SubscriptionEnded,
        LicenseIssued,
        LicenseSuspended,
        LicenseReinstated,
        LicenseRevoked,
        UsageThresholdReached,
        WebhookTest,
    )
}
EVENT_TYPES: tuple[str, ...] = tuple(CATALOGUE)
# What an endpoint can ask for by name (the test event goes only where it is asked for).
SUBSCRIBABLE_TYPES: tuple[str, ...] = tuple(t for t in EVENT_TYPES if t != "webhook.test")

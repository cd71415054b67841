"""The parts of Stripe's objects that billing reads. Everything else in a payload is kept
verbatim in `stripe_events.payload` but not interpreted."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


def expandable_id(value: Any) -> Any:
    """Stripe sends a related object either as its id or, when expanded, as the object."""
    if isinstance(value, dict):
        return value.get("id")
    return value


class StripeObject(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class EventData(StripeObject):
    object: dict[str, Any]


class StripeEvent(StripeObject):
    id: str = Field(pattern=r"^evt_[A-Za-z0-9_]{1,250}$")
    object: str = "event"
    type: str = Field(min_length=1, max_length=200)
    created: int = Field(ge=0)
    livemode: bool = False
    # The connected account the event happened in (Connect endpoints); None: the platform's.
    account: str | None = Field(default=None, pattern=r"^acct_[A-Za-z0-9]{1,250}$")
    data: EventData


class CustomerDetails(StripeObject):
    email: str | None = None


class TotalDetails(StripeObject):
    amount_discount: int = 0
    amount_shipping: int = 0
    amount_tax: int = 0


class CheckoutSession(StripeObject):
    id: str
    mode: str = "payment"
    payment_status: str
    amount_total: int | None = None
    currency: str | None = None
    total_details: TotalDetails | None = None
    customer: str | None = None
    customer_email: str | None = None
    customer_details: CustomerDetails | None = None
    metadata: dict[str, str] = {}
    payment_intent: str | None = None

    _ids = field_validator("customer", "payment_intent", mode="before")(expandable_id)

    @property
    def email(self) -> str | None:
        if self.customer_details and self.customer_details.email:
            return self.customer_details.email
        return self.customer_email


class Charge(StripeObject):
    id: str
    amount: int = Field(ge=0)
    amount_captured: int = 0
    amount_refunded: int = Field(default=0, ge=0)
    refunded: bool = False
    currency: str
    payment_intent: str | None = None
    customer: str | None = None
    receipt_url: str | None = None

    _ids = field_validator("customer", "payment_intent", mode="before")(expandable_id)

    @property
    def fully_refunded(self) -> bool:
        captured = self.amount_captured or self.amount
        return self.refunded or (captured > 0 and self.amount_refunded >= captured)


class Dispute(StripeObject):
    id: str
    amount: int = 0
    charge: str | None = None
    payment_intent: str | None = None
    status: str
    reason: str | None = None

    _ids = field_validator("charge", "payment_intent", mode="before")(expandable_id)

"""Checkout request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from tessera.billing.stripe.return_urls import ReturnUrl


class CheckoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(default=1, ge=1, le=100)
    email: EmailStr | None = None
    success_url: ReturnUrl | None = None
    cancel_url: ReturnUrl | None = None


class CheckoutCreated(BaseModel):
    id: str
    url: str
    test_mode: bool


# A Checkout Session id as Stripe (and the test checkout) makes them.
SESSION_ID = r"^cs_(test|live)_[A-Za-z0-9]{8,200}$"


class CheckoutOutcome(BaseModel):
    """What became of a checkout, for its success page, whichever seller it was made for.
    Whoever holds the session id (it is in the success URL) may read this, so the address is
    masked and nothing here opens anything: the license itself is shown only to its
    signed-in owner."""

    session_id: str
    # pending: no completed checkout recorded yet (or no such session), or a subscription
    # whose own events have not arrived; otherwise the order's status (kind `payment`) or
    # the subscription's Stripe status (kind `subscription`: trialing, active, incomplete…).
    state: Literal["pending", "paid", "refunded", "partially_refunded", "disputed"] | str
    kind: Literal["payment", "subscription"] | None = Field(
        default=None,
        description="What the checkout bought: a one-time `payment` (an order) or a "
        "`subscription`; null until billing has recorded the completed checkout.",
    )
    order_id: UUID | None = None
    product: str | None = None
    sku: str | None = None
    quantity: int | None = None
    seats: int | None = None
    email_hint: str | None = Field(
        default=None, description="The buyer's address, masked: j•••@e•••.com"
    )
    # The buyer's account exists: its welcome mail (with a sign-in link) is on its way.
    account_ready: bool = False
    # A subscription's tier and interval, and when its trial ends (null: no trial).
    tier: str | None = None
    interval: Literal["month", "year"] | None = None
    trial_end: datetime | None = None

"""Checkout request and response bodies."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class CheckoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(default=1, ge=1, le=100)
    email: EmailStr | None = None


class CheckoutCreated(BaseModel):
    id: str
    url: str
    test_mode: bool


# A Checkout Session id as Stripe (and the test checkout) makes them.
SESSION_ID = r"^cs_(test|live)_[A-Za-z0-9]{8,200}$"


class CheckoutOutcome(BaseModel):
    """What became of a checkout, for its success page. Whoever holds the session id (it is
    in the success URL) may read this, so the address is masked and nothing here opens
    anything: the license itself is shown only to its signed-in owner."""

    session_id: str
    # pending: no completed payment recorded yet (or no such session); otherwise the order's.
    state: Literal["pending", "paid", "refunded", "partially_refunded", "disputed"] | str
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

"""Subscription request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

from tessera.billing.catalog.schemas import EXISTING_CODE, Interval
from tessera.billing.stripe.return_urls import ReturnUrl

# Stripe's subscription id.
SUBSCRIPTION_ID = r"^sub_[A-Za-z0-9_]{1,250}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubscriptionCheckoutRequest(Strict):
    tier: str = Field(pattern=EXISTING_CODE, max_length=100)
    interval: Interval = "month"
    email: EmailStr | None = None
    success_url: ReturnUrl | None = None
    cancel_url: ReturnUrl | None = None


class SubscriptionCheckoutCreated(BaseModel):
    id: str
    url: str


class CancelRequest(Strict):
    # True: at the end of the period (resumable until then); false: now.
    at_period_end: bool = True


class ChangeRequest(Strict):
    """A new tier or interval (or both); Stripe prorates the change."""

    tier: str | None = Field(default=None, pattern=EXISTING_CODE, max_length=100)
    interval: Interval | None = None

    @model_validator(mode="after")
    def something(self) -> ChangeRequest:
        if self.tier is None and self.interval is None:
            raise ValueError("name a tier, an interval, or both")
        return self


class SubscriptionOut(BaseModel):
    id: str
    customer_id: UUID | None
    product: str | None
    tier: str | None
    interval: Literal["month", "year"] | None
    status: str | None
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    trial_end: datetime | None
    past_due_since: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    sequence: int

    @classmethod
    def of(cls, row: Any) -> SubscriptionOut:
        return cls(
            id=row["id"], customer_id=row["account_id"], product=row["product"],
            tier=row["tier"], interval=row["interval"], status=row["status"],
            current_period_start=row["current_period_start"],
            current_period_end=row["current_period_end"],
            cancel_at_period_end=row["cancel_at_period_end"], trial_end=row["trial_end"],
            past_due_since=row["past_due_since"], started_at=row["started_at"],
            ended_at=row["ended_at"], sequence=row["sequence"],
        )  # fmt: skip


class PortalLink(BaseModel):
    url: str

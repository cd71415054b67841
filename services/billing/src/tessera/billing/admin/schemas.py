"""Admin request and response bodies."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from tessera.billing.orders.queries import Order
from tessera.billing.orders.schemas import AdminOrderOut

# Why an admin did something destructive (kept in the audit log): required on every such
# API, blanks stripped, so a reason of only spaces is refused as empty (422).
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class SeedAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    # With a SKU: a complimentary order granting it (same events as a purchase, source=admin).
    sku: str | None = Field(default=None, max_length=64)
    quantity: int = Field(default=1, ge=1, le=100)
    note: Reason


class SeededAccount(BaseModel):
    account_id: UUID
    order_id: UUID | None


class AccountOut(BaseModel):
    id: UUID
    email: str
    source: str
    created_at: datetime
    orders: int = 0


class AuditEntry(BaseModel):
    actor: str
    action: str
    subject: str | None
    detail: dict[str, object]
    ip: str | None
    at: datetime


class AccountDetail(BaseModel):
    account: AccountOut
    orders: list[AdminOrderOut]
    audit: list[AuditEntry]


class HeldOrderOut(AdminOrderOut):
    """An order held for review: why, and what an admin decided."""

    hold_reason: str
    hold_event_id: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_reason: str | None

    @classmethod
    def of_held(cls, order: Order) -> HeldOrderOut:
        return cls(
            **AdminOrderOut.of(order).model_dump(),
            hold_reason=order.hold_reason or "",
            hold_event_id=order.hold_event_id,
            reviewed_by=order.reviewed_by,
            reviewed_at=order.reviewed_at,
            review_reason=order.review_reason,
        )


class Review(BaseModel):
    """An admin's decision on a held order, with the reason kept in the audit log."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason


class ReplayResult(BaseModel):
    id: str
    status: str
    detail: str


class RevenueRow(BaseModel):
    day: date
    sku: str
    currency: str
    orders: int
    gross: int
    refunds: int
    disputes_lost: int
    net: int


class RevenueSummary(BaseModel):
    start: date
    end: date
    currency_totals: dict[str, dict[str, int]]
    rows: list[RevenueRow]

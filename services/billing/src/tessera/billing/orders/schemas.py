"""Order views for customers and admins."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from tessera.billing.orders.queries import Order


class OrderOut(BaseModel):
    id: UUID
    account_id: UUID | None
    email: str
    sku: str
    product: str
    quantity: int
    seats: int
    amount_total: int
    amount_refunded: int
    currency: str
    status: str
    dispute_status: str | None
    source: str
    receipt_url: str | None
    created_at: datetime
    paid_at: datetime | None

    @classmethod
    def of(cls, order: Order) -> OrderOut:
        return cls(
            id=order.id,
            account_id=order.account_id,
            email=order.email,
            sku=order.sku,
            product=order.product,
            quantity=order.quantity,
            seats=order.seats,
            amount_total=order.amount_total,
            amount_refunded=order.amount_refunded,
            currency=order.currency,
            status=order.status,
            dispute_status=order.dispute_status,
            source=order.source,
            receipt_url=order.receipt_url,
            created_at=order.created_at,
            paid_at=order.paid_at,
        )


class AdminOrderOut(OrderOut):
    checkout_session_id: str | None
    payment_intent_id: str | None
    charge_id: str | None
    customer_id: str | None

    @classmethod
    def of(cls, order: Order) -> AdminOrderOut:
        return cls(
            **OrderOut.of(order).model_dump(),
            checkout_session_id=order.checkout_session_id,
            payment_intent_id=order.payment_intent_id,
            charge_id=order.charge_id,
            customer_id=order.customer_id,
        )


class BillingPortalLink(BaseModel):
    url: str

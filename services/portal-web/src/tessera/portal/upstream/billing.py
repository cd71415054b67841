"""Billing's customer and admin API as the portal uses it (docs/billing.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from tessera.portal.upstream.base import Caller, Upstream


class Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Order(Loose):
    id: UUID
    account_id: UUID | None = None
    email: str
    sku: str
    product: str
    quantity: int
    seats: int
    amount_total: int
    amount_refunded: int = 0
    currency: str
    status: str
    dispute_status: str | None = None
    source: str
    receipt_url: str | None = None
    created_at: datetime
    paid_at: datetime | None = None
    checkout_session_id: str | None = None
    payment_intent_id: str | None = None
    charge_id: str | None = None
    customer_id: str | None = None


class Account(Loose):
    id: UUID
    email: str
    source: str
    created_at: datetime
    orders: int = 0


class AuditEntry(Loose):
    actor: str
    action: str
    detail: dict[str, Any] = {}
    at: datetime


class AccountDetail(Loose):
    account: Account
    orders: list[Order]
    audit: list[AuditEntry]


class WebhookEvent(Loose):
    id: str
    type: str
    status: str
    detail: str | None = None
    order_id: UUID | None = None
    attempts: int = 0
    received_at: datetime
    processed_at: datetime | None = None


class Replayed(Loose):
    id: str
    status: str
    detail: str


class RevenueRow(Loose):
    day: date
    sku: str
    currency: str
    orders: int
    gross: int
    refunds: int
    disputes_lost: int
    net: int


class Revenue(Loose):
    start: date
    end: date
    currency_totals: dict[str, dict[str, int]]
    rows: list[RevenueRow]


class Seeded(Loose):
    account_id: UUID
    order_id: UUID | None = None


class HeldOrder(Order):
    """An order held for review because its checkout did not match the catalog."""

    hold_reason: str
    hold_event_id: str | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    review_reason: str | None = None


class CheckoutOutcome(Loose):
    session_id: str
    state: str
    order_id: UUID | None = None
    product: str | None = None
    sku: str | None = None
    quantity: int | None = None
    seats: int | None = None
    email_hint: str | None = None
    account_ready: bool = False
    # `payment` (an order) or `subscription`; None until billing recorded the checkout.
    kind: str | None = None
    tier: str | None = None
    interval: str | None = None
    trial_end: datetime | None = None


class BillingClient:
    def __init__(self, upstream: Upstream) -> None:
        self.up = upstream

    async def checkout_outcome(self, caller: Caller, session_id: str) -> CheckoutOutcome:
        """What became of a checkout (no token: whoever holds its success URL may ask)."""
        response = await self.up.call("GET", f"/v1/checkout/sessions/{session_id}", caller=caller)
        return CheckoutOutcome.model_validate(response.json())

    async def my_orders(self, caller: Caller, token: str) -> list[Order]:
        response = await self.up.call("GET", "/v1/me/orders", caller=caller, token=token)
        return [Order.model_validate(x) for x in response.json()]

    async def billing_portal(self, caller: Caller, token: str) -> str:
        response = await self.up.call("POST", "/v1/me/billing-portal", caller=caller, token=token)
        return str(response.json()["url"])

    # --- admin -----------------------------------------------------------------------------
    async def accounts(self, caller: Caller, token: str, q: str) -> list[Account]:
        response = await self.up.call(
            "GET", "/v1/admin/accounts", caller=caller, token=token, params={"q": q}
        )
        return [Account.model_validate(x) for x in response.json()]

    async def orders(self, caller: Caller, token: str, q: str) -> list[Order]:
        response = await self.up.call(
            "GET", "/v1/admin/orders", caller=caller, token=token, params={"q": q}
        )
        return [Order.model_validate(x) for x in response.json()]

    async def account(self, caller: Caller, token: str, account_id: UUID) -> AccountDetail:
        response = await self.up.call(
            "GET", f"/v1/admin/accounts/{account_id}", caller=caller, token=token
        )
        return AccountDetail.model_validate(response.json())

    async def seed(
        self, caller: Caller, token: str, email: str, sku: str | None, note: str
    ) -> Seeded:
        body = {"email": email, "sku": sku or None, "quantity": 1, "note": note}
        response = await self.up.call(
            "POST", "/v1/admin/accounts", caller=caller, token=token, json=body, expect=(201,)
        )
        return Seeded.model_validate(response.json())

    async def webhook_events(
        self, caller: Caller, token: str, status: str | None, event_type: str | None
    ) -> list[WebhookEvent]:
        response = await self.up.call(
            "GET",
            "/v1/admin/webhook-events",
            caller=caller,
            token=token,
            params={"status": status, "type": event_type, "limit": 100},
        )
        return [WebhookEvent.model_validate(x) for x in response.json()]

    async def replay(self, caller: Caller, token: str, event_id: str) -> Replayed:
        response = await self.up.call(
            "POST", f"/v1/admin/webhook-events/{event_id}/replay", caller=caller, token=token
        )
        return Replayed.model_validate(response.json())

    async def revenue(
        self, caller: Caller, token: str, start: date | None, end: date | None
    ) -> Revenue:
        params = {
            "start": start.isoformat() if start else None,
            "end": end.isoformat() if end else None,
        }
        response = await self.up.call(
            "GET", "/v1/admin/revenue", caller=caller, token=token, params=params
        )
        return Revenue.model_validate(response.json())

    async def export(self, caller: Caller, token: str, name: str) -> bytes:
        """`orders.csv` or `accounts.csv`."""
        response = await self.up.call(
            "GET", f"/v1/admin/exports/{name}", caller=caller, token=token
        )
        return response.content

    async def held_orders(self, caller: Caller, token: str, status: str) -> list[HeldOrder]:
        response = await self.up.call(
            "GET",
            "/v1/admin/held-orders",
            caller=caller,
            token=token,
            params={"status": status, "limit": 200},
        )
        return [HeldOrder.model_validate(x) for x in response.json()]

    async def held_order(self, caller: Caller, token: str, order_id: UUID) -> HeldOrder:
        response = await self.up.call(
            "GET", f"/v1/admin/held-orders/{order_id}", caller=caller, token=token
        )
        return HeldOrder.model_validate(response.json())

    async def review_held(
        self, caller: Caller, token: str, order_id: UUID, decision: str, reason: str
    ) -> HeldOrder:
        """`approve` or `reject` a held order, with the reason billing audits."""
        assert decision in ("approve", "reject")
        response = await self.up.call(
            "POST",
            f"/v1/admin/held-orders/{order_id}/{decision}",
            caller=caller,
            token=token,
            json={"reason": reason},
        )
        return HeldOrder.model_validate(response.json())


class CatalogItem(Loose):
    sku: str
    name: str
    product: str
    policy: str
    active: bool = True


async def fetch_catalog(client: BillingClient, caller: Caller) -> list[CatalogItem]:
    """Billing's public catalog (no token)."""
    response = await client.up.call("GET", "/v1/catalog", caller=caller)
    return [CatalogItem.model_validate(x) for x in response.json()]


# --- the seller API, with a member's seller-session token (docs/sellers.md) -----------------
class PlatformPlan(Loose):
    status: str
    in_force: bool


class SellerBilling:
    """Billing's seller routes as the dashboard reads them: the `session` is auth's
    short-lived seller-session token for one seller and mode, never a key."""

    def __init__(self, upstream: Upstream) -> None:
        self.up = upstream

    async def plan(self, caller: Caller, session: str) -> PlatformPlan:
        response = await self.up.call(
            "GET", "/v1/platform/subscription", caller=caller, token=session
        )
        return PlatformPlan.model_validate(response.json())

    async def stripe_connected(self, caller: Caller, session: str) -> bool:
        response = await self.up.call(
            "GET", "/v1/connection", caller=caller, token=session, expect=(200, 404)
        )
        return response.status_code == 200

    async def tier_count(self, caller: Caller, session: str) -> int:
        response = await self.up.call("GET", "/v1/tiers", caller=caller, token=session)
        return len(response.json())
